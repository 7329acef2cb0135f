"""The police adapter: NRM and Duty to Notify JSON, bulk CSV and case update JSON."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from adapters.native.case import CaseUpdateDocument
from adapters.native.casemap import case_event
from adapters.police.mapping import dtn_event, referral_event
from adapters.police.models import DutyToNotify, NrmReferral
from adapters.police.parse import parse_case_json, parse_dtn_json, parse_nrm_csv, parse_nrm_json
from adapters.police.render import render_case_json, render_referral_json
from adapters.protocol import CanonicalEvent, DeliveredEvent, ParsedItem, ParseResult, Sniffed
from broker.errors import InputValidationError

_SINGLE: dict[str, Callable[[bytes], BaseModel]] = {
    "nrm-json": parse_nrm_json,
    "dtn-json": parse_dtn_json,
    "case-json": parse_case_json,
}
_RENDERS: dict[str, tuple[str, ...]] = {
    "nrm-json": ("referral.nrm",),
    "dtn-json": ("referral.dtn",),
    "case-json": (
        "case.arrest", "case.charge", "case.file_submitted",
        "case.charging_decision", "case.hearing_outcome",
    ),
}  # fmt: skip


class PoliceAdapter:
    """Police forces: publish referrals and case updates; receive decisions and referrals."""

    family = "police"
    parse_formats: tuple[str, ...] = ("nrm-json", "dtn-json", "nrm-csv", "case-json")
    render_formats: tuple[str, ...] = tuple(_RENDERS)
    partner_kinds: tuple[str, ...] = ("force", "national_agency", "ngo")

    def detect(self, sniffed: Sniffed) -> str | None:
        """``nrm-csv`` by suffix; case update, DtN or NRM JSON by their members."""
        if sniffed.suffix == ".csv":
            return "nrm-csv"
        doc = sniffed.json_object
        if doc is None:
            return None
        if "update" in doc and "urn" in doc:
            return "case-json"
        routing = doc.get("routing")
        kind = routing.get("kind") if isinstance(routing, dict) else None
        return {"DTN": "dtn-json", "NRM": "nrm-json"}.get(str(kind))

    def extension(self, fmt: str) -> str:
        """Every police format is written as JSON."""
        return "json"

    def parse(self, data: bytes, fmt: str) -> ParseResult:
        """Validate police ``data``; the CSV export may reject single rows."""
        if fmt == "nrm-csv":
            return parse_nrm_csv(data)
        if fmt not in _SINGLE:
            raise ValueError(f"the police adapter does not read {fmt!r}")
        return ParseResult((ParsedItem(None, _SINGLE[fmt](data)),))

    def to_canonical(self, document: BaseModel) -> CanonicalEvent:
        """The referral, DtN or case update as its canonical event."""
        if isinstance(document, NrmReferral):
            return referral_event(document)
        if isinstance(document, DutyToNotify):
            return dtn_event(document)
        if isinstance(document, CaseUpdateDocument):
            return case_event(document)
        raise TypeError(f"not a police document: {type(document).__name__}")

    def render(self, event: DeliveredEvent, fmt: str) -> bytes:
        """A delivered referral or case update as police JSON."""
        if event.event_type not in _RENDERS.get(fmt, ()):
            raise InputValidationError(
                f"cannot render {event.event_type} as {fmt}",
                [],
            )
        if fmt == "case-json":
            return render_case_json(event)
        return render_referral_json(event)

    def default_render_format(self, event_type: str) -> str | None:
        """``nrm-json``, ``dtn-json`` or ``case-json`` by event type."""
        return next((fmt for fmt, types in _RENDERS.items() if event_type in types), None)
