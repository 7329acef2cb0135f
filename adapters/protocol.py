"""What every agency adapter offers, and the plain values that pass between adapter and exchange.

An adapter turns native bytes into validated pydantic documents (:meth:`Adapter.parse`),
maps a document to a :class:`CanonicalEvent` — event type, subject, markings and a payload
dict that fits the event's Avro schema (:meth:`Adapter.to_canonical`) — and renders a
delivered event back into native bytes (:meth:`Adapter.render`). The publisher and subscriber
work only through this protocol, so they never import a concrete agency's models.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from broker.errors import InputValidationError
from broker.types import Subject


@dataclass(frozen=True)
class ParsedItem:
    """One valid native document; ``row`` is its 1-based data row in a batch file, else ``None``."""

    row: int | None
    document: BaseModel


@dataclass(frozen=True)
class RejectedItem:
    """One invalid row of a batch file, with every failing field."""

    row: int | None
    error: InputValidationError


@dataclass(frozen=True)
class ParseResult:
    """What a native file held: the valid documents and the rows that were rejected."""

    accepted: tuple[ParsedItem, ...]
    rejected: tuple[RejectedItem, ...] = ()


@dataclass(frozen=True)
class CanonicalEvent:
    """A native document mapped to the exchange's terms, ready to be enveloped and signed.

    ``reference`` is the document's own reference (NRM external id, URN plus update id,
    alert message id); with the agency and a hash of the content it derives the event id,
    so re-publishing the same document yields the same id.
    """

    event_type: str
    subject: Subject
    reference: str
    record_name: str
    """The Avro record name of the payload schema (``Referral``, ``CaseUpdate``, ``Alert``)."""
    markings: Mapping[str, Any]
    payload: Mapping[str, Any]
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class DeliveredEvent:
    """A verified, decoded event as a subscriber hands it to an adapter for rendering."""

    event_id: str
    event_type: str
    source: str
    subject: str
    markings: Mapping[str, Any]
    payload: Mapping[str, Any]
    occurred_at: datetime | None = None
    record_name: str = ""
    provenance: Mapping[str, Any] | None = None
    """What the delivery says about itself: ``recipient``, ``view``, ``decided_at`` (the
    router's signature time, ISO 8601) and, when the delivery carries them, ``rule`` and
    ``lawful_basis`` (:mod:`adapters.native.provenance`)."""
    verification: Mapping[str, Any] | None = None
    """What the subscriber verified (:class:`broker.crypto.view_check.ViewVerification` as
    JSON): ``result`` says whether the originator's own signature, or only the router's,
    vouches for the values."""


@dataclass(frozen=True)
class Sniffed:
    """What format detection looks at, read once for every adapter."""

    suffix: str
    """The file name's suffix, lower case (``.json``)."""
    head: bytes
    """The first 4 KiB, without a byte-order mark or leading white space."""
    json_object: Mapping[str, Any] | None
    """The document parsed as JSON, when it is a JSON object."""


@runtime_checkable
class Adapter(Protocol):
    """One agency family's native formats (police, CPS, overseas).

    An adapter owns its extension points: the formats it reads and writes, how to recognise
    them (:meth:`detect`), which partner kinds read its formats and each format's file
    extension. :mod:`adapters.registry` is built from the list of adapters alone.
    """

    family: str
    parse_formats: tuple[str, ...]
    """Formats :meth:`parse` reads (``nrm-json``, ``cps-xml`` ...)."""
    render_formats: tuple[str, ...]
    """Formats :meth:`render` writes."""
    partner_kinds: tuple[str, ...]
    """Policy partner kinds (``prosecutor`` ...) whose systems read this family's formats."""

    def detect(self, sniffed: Sniffed) -> str | None:
        """The format of a document this family reads, or ``None`` when it is not one of them."""
        ...

    def extension(self, fmt: str) -> str:
        """The file extension (without the dot) of a document rendered as ``fmt``."""
        ...

    def parse(self, data: bytes, fmt: str) -> ParseResult:
        """Validate native ``data`` in format ``fmt``.

        Raises :class:`InputValidationError` (or :class:`UnsafeXmlError`) when the whole
        document is unusable; a batch format reports bad rows in ``ParseResult.rejected``.
        """
        ...

    def to_canonical(self, document: BaseModel) -> CanonicalEvent:
        """Map a validated document to its canonical event."""
        ...

    def render(self, event: DeliveredEvent, fmt: str) -> bytes:
        """Render a delivered event as native bytes in format ``fmt``.

        Raises :class:`InputValidationError` when the event cannot be expressed in ``fmt``.
        """
        ...

    def default_render_format(self, event_type: str) -> str | None:
        """The format this family renders ``event_type`` in, or ``None`` if it does not."""
        ...
