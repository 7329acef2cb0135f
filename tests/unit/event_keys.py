"""Keys and trust stores for the signing tests."""

from __future__ import annotations

from datetime import datetime, timedelta

from broker.crypto.signing_keys import SigningKey, generate_signing_key, public_key_bytes
from broker.crypto.trust import TrustedKey, TrustStore
from broker.types import AgencyId
from tests.unit.event_samples import PUBLISHED

YEAR = timedelta(days=365)


def trusted(
    key: SigningKey,
    *,
    not_before: datetime = PUBLISHED - YEAR,
    not_after: datetime | None = PUBLISHED + YEAR,
    revoked_at: datetime | None = None,
) -> TrustedKey:
    """The trust-store entry for ``key``."""
    return TrustedKey(
        key_id=key.key_id,
        agency=key.agency,
        use="sign",
        algorithm="ed25519",
        public_key=public_key_bytes(key.public_key),
        not_before=not_before,
        not_after=not_after,
        revoked_at=revoked_at,
    )


def store(*keys: TrustedKey, routers: tuple[str, ...] = ()) -> TrustStore:
    """A trust store holding ``keys``; agencies in ``routers`` are marked as routers."""
    result = TrustStore({})
    for key in keys:
        result = result.with_key(key, router=key.agency in routers or None)
    return result


def agency_key(agency: str) -> SigningKey:
    """A fresh key for ``agency``."""
    return generate_signing_key(AgencyId(agency))
