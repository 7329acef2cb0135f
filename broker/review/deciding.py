"""A reviewer deciding one waiting hold: the checks and the signed decision (pure).

``msht held release|refuse`` and the demo's reviewer both decide holds through
:func:`sign_decision`, after :func:`check_router_signed` and with the key
:func:`load_reviewer_key` reads; the caller publishes the bytes to the decisions topic.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker.crypto.keyfiles import signing_key_file
from broker.crypto.signing_keys import SigningKey, load_signing_key
from broker.crypto.trust import TrustStore
from broker.errors import ConfigError, MshtError, ReviewError
from broker.review.decision import Verdict, write_decision
from broker.review.queue import Waiting


def check_router_signed(trust: TrustStore, waiting: Waiting) -> None:
    """Raise :class:`ReviewError` unless a router in ``trust`` signed the held record: a
    reviewer decides only what the router held."""
    record = waiting.record
    key = trust.key(record.document.key_id)
    if not trust.is_router(key.agency) or key.agency != record.document.signer:
        raise ReviewError(f"hold {record.hold_id}: not signed by a router in the trust store")
    record.verify(Ed25519PublicKey.from_public_bytes(key.public_key))


def load_reviewer_key(key_dir: Path, reviewer: str, passphrase: bytes | None) -> SigningKey:
    """The reviewer's Ed25519 signing key from ``key_dir``; :class:`ConfigError` if absent."""
    try:
        return load_signing_key(
            signing_key_file(key_dir, reviewer), reviewer, passphrase=passphrase
        )
    except MshtError as exc:
        raise ConfigError(f"reviewer {reviewer}: no signing key ({exc})") from exc


def sign_decision(
    waiting: Waiting,
    *,
    partner: str,
    verdict: Verdict,
    reason: str,
    reviewer: SigningKey,
    decided_at: datetime,
) -> bytes:
    """The decision's bytes on ``waiting`` for ``partner``, signed by ``reviewer``.

    :class:`ReviewError` when the hold was already decided for that partner (naming by whom
    and when) or is not held for it at all.
    """
    if partner not in waiting.waiting:
        decided = {str(c.partner): c for c in waiting.closed}
        hold_id = waiting.record.hold_id
        if partner in decided:
            c = decided[partner]
            raise ReviewError(
                f"hold {hold_id} for {partner} was already decided "
                f"({c.verdict} by {c.reviewer} at {c.decided_at.isoformat()})"
            )
        raise ReviewError(f"hold {hold_id} is not held for {partner!r}")
    return write_decision(
        held_value=waiting.value,
        held=waiting.record,
        partner=partner,
        verdict=verdict,
        reason=reason,
        reviewer=reviewer,
        decided_at=decided_at,
    )
