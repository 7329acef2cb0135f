"""Delivered payloads as plain JSON-ready values, whatever the Avro decoder produced.

A decoded payload may hold ``date``/``datetime`` objects (Avro logical types), tuples or
``None`` for fields a recipient's view withheld. Renderers write only what is there: ``None``
is left out, dates become ISO 8601 text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from enum import Enum
from typing import Any


def plain(value: Any) -> Any:
    """``value`` with dates as ISO text, enums as their values and ``None`` entries removed."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value if v is not None]
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


def to_json(value: Mapping[str, Any]) -> bytes:
    """Indented UTF-8 JSON with a final newline."""
    return json.dumps(plain(value), indent=2, ensure_ascii=False).encode() + b"\n"
