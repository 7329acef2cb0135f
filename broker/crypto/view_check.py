"""A recipient's whole check of a delivered view, and the verification record it leaves.

:func:`check_view` verifies the router's signature (and any countersignature) over the view,
opens the fields sealed to the recipient (each v3 value carries its commitment salt), then,
on a committed view (Envelope v3), recomputes the originator's commitment root from the
disclosed values, their salts and the hashes of what was withheld, and verifies the
originating agency's own signature over its header (docs/EVENTS.md, "Verifying a view").
The :class:`ViewVerification` says which of the two it verified; ``msht subscribe
--evidence`` writes it beside each rendered document and ``msht verify`` re-checks a saved
view with it.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from broker.crypto.committed import check_committed
from broker.crypto.sealed_fields import open_protected_salted, scope_of
from broker.crypto.sealing import sealed_paths
from broker.crypto.signing import DEFAULT_MAX_SKEW, verify_bytes, verify_origin
from broker.crypto.trust import TrustStore
from broker.errors import SealingError
from broker.events.envelope import Envelope, decode_payload
from broker.types import PartnerId

ORIGINATOR_AND_ROUTER = "originator and router"
"""Result: the originating agency's own signature covers every disclosed value, and the
router's signature covers the view."""

ORIGINAL = "originator (an original, not a view)"
"""Result: an original event checked by its source's signature and its commitments."""

ROUTER_ONLY = "router only"
"""Result: a view without commitments (Envelope v2, from an original published before them):
only the router's signature vouches for it."""


@dataclass(frozen=True)
class ViewVerification:
    """What a recipient verified about one view, for the log, the case file and later."""

    event_id: str
    event_type: str
    recipient: str | None
    result: str
    """:data:`ORIGINATOR_AND_ROUTER` or :data:`ROUTER_ONLY`."""
    originator: str
    originator_key_id: str | None
    originator_signed_at: datetime | None
    commitment_root: str | None
    """The signed root, hex."""
    disclosed: int
    """How many values the view discloses under the originator's signature."""
    router: str
    router_key_id: str
    router_signed_at: datetime
    router_signature: str = field(repr=False)
    """The router's Ed25519 signature, unpadded base64url."""
    countersignatures: tuple[str, ...] = ()
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_json(self) -> dict[str, Any]:
        """The record as JSON-ready values (times ISO 8601)."""
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "recipient": self.recipient,
            "result": self.result,
            "originator": self.originator,
            "originator_key_id": self.originator_key_id,
            "originator_signed_at": _iso(self.originator_signed_at),
            "commitment_root": self.commitment_root,
            "disclosed_values": self.disclosed,
            "router": self.router,
            "router_key_id": self.router_key_id,
            "router_signed_at": _iso(self.router_signed_at),
            "router_signature": self.router_signature,
            "countersignatures": list(self.countersignatures),
            "checked_at": _iso(self.checked_at),
        }


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


@dataclass(frozen=True)
class CheckedView:
    """A verified view: the envelope, its payload with sealed fields opened, the record."""

    envelope: Envelope
    payload: dict[str, Any] = field(repr=False)
    verification: ViewVerification


def check_view(
    data: bytes,
    trust: TrustStore,
    *,
    partner: PartnerId | None,
    keys: Sequence[X25519PrivateKey],
    now: datetime | None = None,
    max_skew: timedelta = DEFAULT_MAX_SKEW,
) -> CheckedView:
    """Verify and open one delivered view (see the module docstring).

    Raises a :class:`~broker.errors.VerificationError` (a bad signature; a
    :class:`~broker.errors.CommitmentError` naming the field when the disclosed values,
    salts or hashes do not reproduce the signed root, a salt has the wrong length or the
    leaf set does not fit the schema), a :class:`~broker.errors.CodecError` or a
    :class:`SealingError`.
    """
    envelope, routed = verify_bytes(data, trust, now=now, max_skew=max_skew)
    header = envelope.header
    payload = decode_payload(envelope)
    salts: Mapping[bytes, bytes] = {}
    unsalted: Mapping[bytes, str] = {}
    if partner is None or not keys:
        sealed = sealed_paths(payload)
        if sealed:
            raise SealingError(
                f"{sealed[0]}: sealed for a recipient, and no encryption key is loaded"
            )
    else:  # one walk: opening a payload with nothing sealed gives it back as it was
        payload, salts, unsalted = open_protected_salted(payload, scope_of(header), partner, keys)
    first = routed.checks[0]
    origin_key = origin_at = root = None
    disclosed = 0
    result = ROUTER_ONLY
    if header.commitment is not None and header.provenance is not None:
        opening = check_committed(envelope, payload, salts, original=False, unsalted=unsalted)
        origin = verify_origin(envelope, trust, now=now, max_skew=max_skew)
        origin_key, origin_at = origin.checks[0].key_id, origin.checks[0].signed_at
        root, disclosed, result = (
            header.commitment.root.hex(),
            len(opening.salts),
            (ORIGINATOR_AND_ROUTER),
        )
    elif header.commitment is not None:
        opening = check_committed(envelope, payload, salts, original=True, unsalted=unsalted)
        origin_key, origin_at = first.key_id, first.signed_at
        root, disclosed, result = header.commitment.root.hex(), len(opening.salts), ORIGINAL
    record = ViewVerification(
        event_id=header.event_id,
        event_type=header.event_type,
        recipient=header.provenance.recipient if header.provenance is not None else None,
        result=result,
        originator=header.source,
        originator_key_id=origin_key,
        originator_signed_at=origin_at,
        commitment_root=root,
        disclosed=disclosed,
        router=first.signer,
        router_key_id=first.key_id,
        router_signed_at=first.signed_at,
        router_signature=base64.urlsafe_b64encode(envelope.signatures[0].signature)
        .rstrip(b"=")
        .decode("ascii"),
        countersignatures=tuple(f"{c.signer} {c.key_id}" for c in routed.checks[1:]),
    )
    return CheckedView(envelope, payload, record)
