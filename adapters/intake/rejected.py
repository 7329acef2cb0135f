"""Keeping rejected native input: the raw file and a reason file beside it, nothing dropped.

Each rejected file is stored once under ``<state_dir>/rejected/<agency>/`` as
``<time>-<digest>-<name>`` (the raw bytes, unchanged) and ``<same>.reason.json`` listing every
rejected row with every failing field. The folder is created readable by its owner only:
rejected input is as sensitive as accepted input.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.intake.pipeline import Rejection
from broker.crypto.private_files import write_file
from broker.types import AgencyId

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def reason_record(
    agency: AgencyId, source: str, fmt: str | None, rejections: Sequence[Rejection]
) -> dict[str, Any]:
    """The reason record of one file's rejections (what the ``.reason.json`` file holds)."""
    return {
        "agency": agency,
        "file": source,
        "format": fmt,
        "rejected_at": datetime.now(UTC).isoformat(),
        "rejections": [
            {
                "row": r.row,
                "message": r.message,
                "problems": [{"location": p.location, "reason": p.reason} for p in r.problems],
            }
            for r in rejections
        ],
    }


def _write_private(path: Path, data: bytes) -> None:
    # Rejected input is kept verbatim and may name a victim: owner-only, like the outbox.
    write_file(path, data)


def keep_rejected(
    folder: Path,
    agency: AgencyId,
    source: str,
    fmt: str | None,
    raw: bytes,
    rejections: Sequence[Rejection],
) -> Path:
    """Store ``raw`` and its reasons under ``folder/<agency>/``; returns the reason file's path."""
    target = folder / agency
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    digest = hashlib.sha256(raw).hexdigest()[:12]
    name = _SAFE_NAME.sub("_", Path(source).name)[:80] or "input"
    base = target / f"{stamp}-{digest}-{name}"
    _write_private(base, raw)
    reason = base.with_name(base.name + ".reason.json")
    record = reason_record(agency, source, fmt, rejections)
    _write_private(reason, json.dumps(record, indent=2, ensure_ascii=False).encode() + b"\n")
    return reason
