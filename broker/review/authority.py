"""Whether a decision may be carried out: authentic, by a reviewer allowed to make it, on a
hold the router wrote. Pure: the trust store, the policy and the router's own key decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker.crypto.trust import KeyStatus, TrustStore
from broker.errors import ReviewError
from broker.policy.model import Policy
from broker.review.decision import ReviewDecision, read_decision
from broker.review.held import HeldRecord

MALFORMED = "malformed-decision"
UNVERIFIED = "unverified-decision"
NOT_ALLOWED = "reviewer-not-allowed"
UNKNOWN_HOLD = "unknown-hold"


@dataclass(frozen=True)
class Refusal:
    """Why a decision is not carried out: a stable reason code and a message."""

    reason: str
    error: str


@dataclass(frozen=True)
class Accepted:
    """A decision that may be carried out, with the held record it decides."""

    decision: ReviewDecision
    held: HeldRecord


def accept(
    value: bytes,
    *,
    policy: Policy,
    trust: TrustStore,
    router_key: Ed25519PublicKey,
    now: datetime,
) -> Accepted | Refusal:
    """Check a decision record; a :class:`Refusal` names the first thing that fails.

    In order: it parses (``malformed-decision``); it is signed by a key the trust store
    lists for the reviewer it names, valid now (``unverified-decision``); that reviewer is
    in the policy and may decide this guard for this partner (``reviewer-not-allowed``);
    the held record it carries was signed by this router, is the hold it names and holds
    the event for that partner by that guard (``unknown-hold``).
    """
    try:
        decision = read_decision(value)
    except ReviewError as exc:
        return Refusal(MALFORMED, str(exc))
    keys = [k for k in trust.signing_keys(decision.reviewer) if k.key_id == decision.key_id]
    if not keys:
        return Refusal(
            UNVERIFIED,
            f"key_id: {decision.key_id} is not a signing key of {decision.reviewer!r} "
            "in the trust store",
        )
    status = keys[0].status_at(now)
    if status is not KeyStatus.VALID:
        return Refusal(UNVERIFIED, f"key_id: {decision.key_id} is {status.value} now")
    try:
        decision.verify(Ed25519PublicKey.from_public_bytes(keys[0].public_key))
    except (ReviewError, ValueError) as exc:
        return Refusal(UNVERIFIED, str(exc))
    reviewer = policy.reviewer(decision.reviewer)
    if reviewer is None:
        return Refusal(
            NOT_ALLOWED, f"reviewer: {decision.reviewer!r} is not a reviewer in the policy"
        )
    if not reviewer.may_decide(policy, decision.guard, decision.partner):
        return Refusal(
            NOT_ALLOWED,
            f"reviewer: {decision.reviewer!r} may not decide {decision.guard} holds "
            f"for partner {decision.partner!r}",
        )
    try:
        held = decision.held()
        held.verify(router_key)
    except ReviewError as exc:
        return Refusal(UNKNOWN_HOLD, f"held: {exc}")
    if held.hold_id != decision.hold_id:
        return Refusal(UNKNOWN_HOLD, f"hold_id: the held record carried is {held.hold_id}")
    hold = held.hold_for(decision.partner)
    if hold is None or hold.guard != decision.guard:
        return Refusal(
            UNKNOWN_HOLD,
            f"partner: hold {held.hold_id} is not held for {decision.partner!r} "
            f"by {decision.guard}",
        )
    return Accepted(decision, held)
