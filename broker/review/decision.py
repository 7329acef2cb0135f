"""A reviewer's decision on one hold for one partner: release or refuse, signed, with a reason.

Format ``msht-decision/v1`` (a :mod:`broker.review.signed` document signed with the
reviewer's Ed25519 key). It carries the held record it decides, byte for byte: the router
checks its own signature on it, so it needs no lookup to carry the decision out, and a
decision cannot name a hold the router never wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker.crypto.signing_keys import SigningKey
from broker.errors import ReviewError
from broker.review import signed
from broker.review.held import HeldRecord, read_held
from broker.types import PartnerId

DECISION_FORMAT = "msht-decision/v1"
DECISION_CONTEXT = b"msht-broker/review-decision/v1\x00"
MAX_REASON_CHARS = 2_000


class Verdict(StrEnum):
    """What the reviewer decided for the partner."""

    RELEASE = "release"
    REFUSE = "refuse"


@dataclass(frozen=True)
class ReviewDecision:
    """A decision as read (its signature not yet checked against the trust store)."""

    hold_id: str
    partner: PartnerId
    guard: str
    verdict: Verdict
    reason: str
    reviewer: str
    decided_at: datetime
    held_value: bytes
    document: signed.SignedDocument

    @property
    def key_id(self) -> str:
        """The id of the key the reviewer signed with."""
        return self.document.key_id

    def held(self) -> HeldRecord:
        """The held record the decision carries."""
        return read_held(self.held_value)

    def verify(self, public_key: Ed25519PublicKey) -> None:
        """Raise :class:`ReviewError` unless ``public_key`` signed this decision."""
        self.document.verify(DECISION_CONTEXT, public_key)


def write_decision(
    *,
    held_value: bytes,
    held: HeldRecord,
    partner: str,
    verdict: Verdict,
    reason: str,
    reviewer: SigningKey,
    decided_at: datetime,
) -> bytes:
    """The bytes of a decision on ``held`` for ``partner``, signed by ``reviewer``."""
    hold = held.hold_for(partner)
    if hold is None:
        raise ReviewError(
            f"partner: hold {held.hold_id} is not held for {partner!r} "
            f"(held for: {', '.join(h.partner for h in held.holds)})"
        )
    if not reason.strip() or len(reason) > MAX_REASON_CHARS:
        raise ReviewError(f"reason: give one (1-{MAX_REASON_CHARS} characters)")
    body = {
        "hold_id": held.hold_id,
        "partner": partner,
        "guard": hold.guard,
        "verdict": verdict.value,
        "reason": reason,
        "reviewer": reviewer.agency,
        "decided_at": decided_at.isoformat(),
        "held": signed.b64(held_value),
    }
    return signed.write(
        DECISION_FORMAT,
        DECISION_CONTEXT,
        body,
        reviewer.agency,
        reviewer.key_id,
        reviewer.private_key,
    )


def read_decision(value: bytes) -> ReviewDecision:
    """Parse a decision; :class:`ReviewError` names what is malformed."""
    doc = signed.read(value, DECISION_FORMAT)
    body = doc.body
    try:
        verdict = Verdict(signed.text(body, "verdict"))
    except ValueError as exc:
        raise ReviewError("verdict: must be 'release' or 'refuse'") from exc
    try:
        decided_at = datetime.fromisoformat(signed.text(body, "decided_at"))
    except ValueError as exc:
        raise ReviewError("decided_at: not an ISO time") from exc
    reason = signed.text(body, "reason")
    if len(reason) > MAX_REASON_CHARS:
        raise ReviewError(f"reason: over {MAX_REASON_CHARS} characters")
    reviewer = signed.text(body, "reviewer")
    if reviewer != doc.signer:
        raise ReviewError(f"signer: {doc.signer!r} is not the reviewer the body names")
    return ReviewDecision(
        hold_id=signed.text(body, "hold_id"),
        partner=PartnerId(signed.text(body, "partner")),
        guard=signed.text(body, "guard"),
        verdict=verdict,
        reason=reason,
        reviewer=reviewer,
        decided_at=decided_at,
        held_value=signed.unb64(signed.text(body, "held"), "held"),
        document=doc,
    )
