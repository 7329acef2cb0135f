"""The CPS adapter: case updates rendered as CPS XML; decisions and outcomes read from it."""

from __future__ import annotations

from pydantic import BaseModel

from adapters.cps.parse import parse_case_xml
from adapters.cps.render import render_case_event_xml
from adapters.native.case import EVENT_TYPES, CaseUpdateDocument
from adapters.native.casemap import case_event
from adapters.protocol import CanonicalEvent, DeliveredEvent, ParsedItem, ParseResult, Sniffed
from broker.errors import InputValidationError

_CASE_TYPES = frozenset(EVENT_TYPES.values())


class CpsAdapter:
    """The Crown Prosecution Service's case management system."""

    family = "cps"
    parse_formats: tuple[str, ...] = ("cps-xml",)
    render_formats: tuple[str, ...] = ("cps-xml",)
    partner_kinds: tuple[str, ...] = ("prosecutor", "court")

    def detect(self, sniffed: Sniffed) -> str | None:
        """``cps-xml``: an XML document whose root is ``CaseUpdate``."""
        is_xml = sniffed.suffix == ".xml" or sniffed.head.startswith(b"<")
        return "cps-xml" if is_xml and b"<CaseUpdate" in sniffed.head else None

    def extension(self, fmt: str) -> str:
        """CPS case files are XML."""
        return "xml"

    def parse(self, data: bytes, fmt: str) -> ParseResult:
        """Validate a CPS ``<CaseUpdate>`` document."""
        if fmt != "cps-xml":
            raise ValueError(f"the CPS adapter does not read {fmt!r}")
        return ParseResult((ParsedItem(None, parse_case_xml(data)),))

    def to_canonical(self, document: BaseModel) -> CanonicalEvent:
        """A charging decision or hearing outcome (or any case update) as its event."""
        if not isinstance(document, CaseUpdateDocument):
            raise TypeError(f"not a case update: {type(document).__name__}")
        return case_event(document)

    def render(self, event: DeliveredEvent, fmt: str) -> bytes:
        """A delivered ``case.*`` event as CPS XML."""
        if fmt != "cps-xml" or event.event_type not in _CASE_TYPES:
            raise InputValidationError(f"cannot render {event.event_type} as {fmt}")
        return render_case_event_xml(event)

    def default_render_format(self, event_type: str) -> str | None:
        """``cps-xml`` for every case update."""
        return "cps-xml" if event_type in _CASE_TYPES else None
