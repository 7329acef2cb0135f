"""The status notice the source agency receives when its event is held, released or refused.

Format ``msht-review-notice/v1``: a :mod:`broker.review.signed` document signed by the
router, written to the source's own delivery topic (when the source is a partner) in the
same transaction as the hold or the decision. Identifiers and reasons only: the event id,
hold id, the partner concerned, the guard, the status, the reviewer and their reason — never
the event's content. The source's subscriber verifies the router's signature and renders the
notice in the agency's own format (``adapters/rendering/notice.py``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker.crypto.signing_keys import SigningKey
from broker.crypto.trust import TrustStore
from broker.errors import MshtError, ReviewError
from broker.review import signed

NOTICE_FORMAT = "msht-review-notice/v1"
NOTICE_CONTEXT = b"msht-broker/review-notice/v1\x00"
NOTICE_KIND_HEADER = ("msht-kind", b"review-notice")


class Status(StrEnum):
    """What happened to the event for the partner named."""

    HELD = "held"
    RELEASED = "released"
    REFUSED = "refused"
    NOT_RELEASED = "not-released"
    """A reviewer released it, but the policy still withholds it (see the reason)."""


@dataclass(frozen=True)
class Notice:
    """One status notice."""

    status: Status
    event_id: str
    hold_id: str
    source: str
    subject: str
    partners: tuple[str, ...]
    guard: str
    reason: str
    at: datetime
    reviewer: str | None = None

    @property
    def notice_id(self) -> str:
        """Stable per (hold, status, partners): a re-read renders the same file name."""
        text = "\x00".join((self.hold_id, self.status.value, *self.partners))
        return f"notice-{hashlib.sha256(text.encode()).hexdigest()[:20]}"

    def as_dict(self) -> dict[str, object]:
        """The notice's fields as plain values (for rendering)."""
        return {
            "notice_id": self.notice_id,
            "status": self.status.value,
            "event_id": self.event_id,
            "hold_id": self.hold_id,
            "source": self.source,
            "subject": self.subject,
            "partners": list(self.partners),
            "guard": self.guard,
            "reason": self.reason,
            "reviewer": self.reviewer,
            "at": self.at.isoformat(),
        }


def build_notice(router: SigningKey, notice: Notice) -> bytes:
    """The bytes of ``notice``, signed by the router."""
    body = {k: v for k, v in notice.as_dict().items() if k != "notice_id"}
    return signed.write(
        NOTICE_FORMAT, NOTICE_CONTEXT, body, router.agency, router.key_id, router.private_key
    )


def is_notice(value: bytes) -> bool:
    """Whether ``value`` looks like a notice (and not an Avro envelope)."""
    # signed.write puts the format first.
    return value.startswith(b'{"format":"' + NOTICE_FORMAT.encode() + b'"')


def open_notice(value: bytes, trust: TrustStore) -> Notice:
    """The notice in ``value``, its signature checked against a router key in ``trust``.

    Raises :class:`ReviewError` when it is malformed or not signed by a router.
    """
    doc = signed.read(value, NOTICE_FORMAT)
    try:
        key = trust.key(doc.key_id)
    except MshtError as exc:
        raise ReviewError(f"key_id: {exc}") from exc
    if key.agency != doc.signer or not trust.is_router(key.agency):
        raise ReviewError(f"signer: {doc.signer!r} is not a router in the trust store")
    doc.verify(NOTICE_CONTEXT, Ed25519PublicKey.from_public_bytes(key.public_key))
    body = doc.body
    partners = body.get("partners")
    if not isinstance(partners, list) or not all(isinstance(p, str) for p in partners):
        raise ReviewError("partners: not a list of strings")
    reviewer = body.get("reviewer")
    try:
        status = Status(signed.text(body, "status"))
        at = datetime.fromisoformat(signed.text(body, "at"))
    except ValueError as exc:
        raise ReviewError(f"status or at: {exc}") from exc
    return Notice(
        status=status,
        event_id=signed.text(body, "event_id"),
        hold_id=signed.text(body, "hold_id"),
        source=signed.text(body, "source"),
        subject=signed.text(body, "subject"),
        partners=tuple(partners),
        guard=signed.text(body, "guard"),
        reason=str(body.get("reason") or ""),
        at=at,
        reviewer=reviewer if isinstance(reviewer, str) else None,
    )
