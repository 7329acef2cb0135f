"""Which adapter reads and writes which native format; format detection for ``--format auto``."""

from __future__ import annotations

import json
from pathlib import PurePath

from adapters.cps.adapter import CpsAdapter
from adapters.overseas.adapter import OverseasAdapter
from adapters.police.adapter import PoliceAdapter
from adapters.protocol import Adapter
from broker.errors import FieldProblem, InputValidationError

ADAPTERS: tuple[Adapter, ...] = (PoliceAdapter(), CpsAdapter(), OverseasAdapter())
"""Every agency family's adapter."""

PARSE_FORMATS: dict[str, Adapter] = {f: a for a in ADAPTERS for f in a.parse_formats}
"""Format name → the adapter that reads it."""

RENDER_FORMATS: dict[str, Adapter] = {f: a for a in ADAPTERS for f in a.render_formats}
"""Format name → the adapter that writes it."""


def parser_for(fmt: str) -> Adapter:
    """The adapter that reads ``fmt``."""
    try:
        return PARSE_FORMATS[fmt]
    except KeyError:
        raise InputValidationError(
            "unknown input format",
            [FieldProblem("--format", f"must be one of {', '.join(sorted(PARSE_FORMATS))}")],
        ) from None


FAMILY_OF_PARTNER_KIND: dict[str, str] = {
    "prosecutor": "cps",
    "court": "cps",
    "liaison_point": "overseas",
    "force": "police",
    "national_agency": "police",
    "ngo": "police",
}
"""Which family's formats a partner of each kind (policy ``kind``) reads."""


def renderer_for(
    event_type: str, fmt: str | None = None, family: str | None = None
) -> tuple[Adapter, str] | None:
    """The adapter and format to render ``event_type`` in.

    ``fmt`` is used when its adapter renders this event type; otherwise the default format
    of ``family`` (the partner's adapter family), otherwise the first adapter that can.
    """
    if fmt is not None and fmt in RENDER_FORMATS:
        adapter = RENDER_FORMATS[fmt]
        if adapter.default_render_format(event_type) is not None:
            return adapter, fmt
    preferred = [a for a in ADAPTERS if a.family == family]
    for adapter in [*preferred, *ADAPTERS]:
        default = adapter.default_render_format(event_type)
        if default is not None:
            return adapter, default
    return None


def detect_format(name: str, data: bytes) -> str:
    """Guess a file's format from its name and first bytes.

    Raises :class:`InputValidationError` when the content matches no known format.
    """
    suffix = PurePath(name).suffix.lower()
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if suffix == ".csv":
        return "nrm-csv"
    if suffix == ".xml" or head.startswith(b"<"):
        if b"<UMFMessage" in head:
            return "alert-xml"
        if b"<CaseUpdate" in head:
            return "cps-xml"
    if suffix == ".json" or head.startswith(b"{"):
        try:
            doc = json.loads(data.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            doc = None
        if isinstance(doc, dict):
            if "diffusion" in doc:
                return "alert-json"
            if "update" in doc and "urn" in doc:
                return "case-json"
            routing = doc.get("routing")
            kind = routing.get("kind") if isinstance(routing, dict) else None
            if kind == "DTN":
                return "dtn-json"
            if kind == "NRM":
                return "nrm-json"
    raise InputValidationError(
        f"{name} is not in a recognised format",
        [FieldProblem("(document)", "give --format (nrm-json, dtn-json, nrm-csv, case-json, "
                      "cps-xml, alert-xml or alert-json)")],
    )  # fmt: skip
