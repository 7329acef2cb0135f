"""Conversions between native values and the canonical (Avro) ones.

Canonical dates are ``timestamp-millis`` (a native ``date`` is midnight UTC that day) and
canonical enums are upper-case symbols. Decoded Avro may hand back an aware ``datetime``,
epoch milliseconds or, for events built in-process, the ``datetime`` itself; every reader
here accepts all three.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any


def day_start(value: date | None) -> datetime | None:
    """``value`` as midnight UTC (what a canonical timestamp of a calendar day holds)."""
    return None if value is None else datetime.combine(value, time(0), tzinfo=UTC)


def as_datetime(value: Any) -> datetime | None:
    """A canonical timestamp (datetime, epoch ms or ISO text) as an aware datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    return datetime.fromisoformat(str(value))


def day_text(value: Any) -> str | None:
    """A canonical timestamp of a calendar day as ``YYYY-MM-DD`` (UTC)."""
    moment = as_datetime(value)
    return None if moment is None else moment.astimezone(UTC).date().isoformat()


def moment_text(value: Any) -> str | None:
    """A canonical timestamp as ISO 8601 text in UTC (``Z``)."""
    moment = as_datetime(value)
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def upper(value: str | None) -> str | None:
    """A native code as its canonical enum symbol."""
    return None if value is None else value.upper()


def lower(value: Any) -> str | None:
    """A canonical enum symbol as the native code."""
    return None if value is None else str(value).lower()


def compact(value: Any) -> Any:
    """``value`` with ``None`` entries and empty lists removed, recursively."""
    if isinstance(value, dict):
        out = {k: compact(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != []}
    if isinstance(value, (list, tuple)):
        return [compact(v) for v in value if v is not None]
    return value
