"""The overseas adapter: alerts as UMF-like XML and Interpol-style diffusion JSON, both ways."""

from __future__ import annotations

from pydantic import BaseModel

from adapters.overseas.mapping import alert_event
from adapters.overseas.models import OverseasAlert
from adapters.overseas.parse import parse_alert_json, parse_alert_xml
from adapters.overseas.render import render_alert_event_json, render_alert_event_xml
from adapters.protocol import CanonicalEvent, DeliveredEvent, ParsedItem, ParseResult, Sniffed
from broker.errors import InputValidationError

_ALERT_TYPES = frozenset({"alert.inbound", "alert.outbound"})


class OverseasAdapter:
    """An international liaison point (Europol SIENA or Interpol channel)."""

    family = "overseas"
    parse_formats: tuple[str, ...] = ("alert-xml", "alert-json")
    render_formats: tuple[str, ...] = ("alert-xml", "alert-json")
    partner_kinds: tuple[str, ...] = ("liaison_point",)

    def detect(self, sniffed: Sniffed) -> str | None:
        """``alert-xml`` (a UMF message) or ``alert-json`` (an Interpol diffusion)."""
        is_xml = sniffed.suffix == ".xml" or sniffed.head.startswith(b"<")
        if is_xml and b"<UMFMessage" in sniffed.head:
            return "alert-xml"
        doc = sniffed.json_object
        return "alert-json" if doc is not None and "diffusion" in doc else None

    def extension(self, fmt: str) -> str:
        """``xml`` for UMF messages, ``json`` for diffusions."""
        return "xml" if fmt == "alert-xml" else "json"

    def parse(self, data: bytes, fmt: str) -> ParseResult:
        """Validate an alert in either shape."""
        if fmt == "alert-xml":
            return ParseResult((ParsedItem(None, parse_alert_xml(data)),))
        if fmt == "alert-json":
            return ParseResult((ParsedItem(None, parse_alert_json(data)),))
        raise ValueError(f"the overseas adapter does not read {fmt!r}")

    def to_canonical(self, document: BaseModel) -> CanonicalEvent:
        """The alert as ``alert.inbound`` (from abroad) or ``alert.outbound`` (from the UK)."""
        if not isinstance(document, OverseasAlert):
            raise TypeError(f"not an alert: {type(document).__name__}")
        return alert_event(document)

    def render(self, event: DeliveredEvent, fmt: str) -> bytes:
        """A delivered alert as UMF-like XML or diffusion JSON."""
        if event.event_type not in _ALERT_TYPES:
            raise InputValidationError(f"cannot render {event.event_type} as {fmt}")
        if fmt == "alert-xml":
            return render_alert_event_xml(event)
        if fmt == "alert-json":
            return render_alert_event_json(event)
        raise InputValidationError(f"cannot render {event.event_type} as {fmt}")

    def default_render_format(self, event_type: str) -> str | None:
        """``alert-xml`` for alerts."""
        return "alert-xml" if event_type in _ALERT_TYPES else None
