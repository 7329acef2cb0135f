"""The seam between the adapters and the signed-event core.

The publisher needs one thing from the core: a canonical event turned into signed envelope
bytes (:class:`EventSealer`). The subscriber needs the reverse: envelope bytes verified
against the trust store and decoded (:class:`EventOpener`). Both are protocols so the
publisher and subscriber can be tested without keys, and so they never import the codec.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from adapters.protocol import CanonicalEvent, DeliveredEvent
from broker.review.notice import Notice
from broker.types import AgencyId, EventId


class EventSealer(Protocol):
    """Builds and signs the envelope of a canonical event for one publishing agency."""

    agency: AgencyId

    def seal(self, event: CanonicalEvent, event_id: EventId) -> bytes:
        """Envelope bytes of ``event`` with id ``event_id``, signed with the agency's key.

        Raises :class:`~broker.errors.EncodeError` when the payload does not fit its schema.
        """
        ...


class EventOpener(Protocol):
    """Verifies envelope bytes against the trust store and decodes them."""

    def open(self, data: bytes) -> DeliveredEvent:
        """The verified, decoded event.

        Raises :class:`~broker.errors.VerificationError` or :class:`~broker.errors.CodecError`.
        """
        ...


@runtime_checkable
class NoticeOpener(Protocol):
    """Verifies a router's status notice (:mod:`broker.review.notice`) against the trust store."""

    def open_notice(self, data: bytes) -> Notice:
        """The verified notice; raises :class:`~broker.errors.ReviewError`."""
        ...
