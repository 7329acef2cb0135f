"""Keeping rejected native input: the raw file and a reason file beside it, nothing dropped.

Each rejected file is stored once under ``<state_dir>/rejected/<agency>/`` as
``<time>-<digest>-<name>`` (the raw bytes, unchanged) and ``<same>.reason.json`` listing every
rejected row with every failing field. The folder is created readable by its owner only:
rejected input is as sensitive as accepted input.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.intake.pipeline import Rejection
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
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


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
