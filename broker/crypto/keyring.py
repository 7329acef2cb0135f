"""Creating an agency's key pairs and registering their public halves in the trust store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from broker.crypto.encryption_keys import (
    EncryptionKeyPair,
    generate_encryption_keypair,
    save_private_key,
)
from broker.crypto.encryption_keys import public_key_bytes as x25519_public_bytes
from broker.crypto.signing_keys import (
    SigningKey,
    generate_signing_key,
    public_key_bytes,
    save_signing_key,
)
from broker.crypto.trust import (
    TrustedKey,
    TrustStore,
    key_id_for,
    load_trust_store,
    save_trust_store,
)
from broker.types import AgencyId


@dataclass(frozen=True)
class AgencyKeys:
    """The key pairs just created for one agency and where the private halves were written."""

    signing: SigningKey
    signing_path: Path
    encryption: EncryptionKeyPair | None
    encryption_path: Path | None


def encryption_key_path(key_dir: Path, agency: str, keypair: EncryptionKeyPair) -> Path:
    """``<agency>.<8 hex>.x25519.pem``, the name :mod:`broker.crypto.keyfiles` looks for."""
    key_id = key_id_for("x25519", x25519_public_bytes(keypair.public_key))
    return key_dir / f"{agency}.{key_id.split(':', 1)[1][:8]}.x25519.pem"


def generate_agency_keys(
    key_dir: Path,
    trust_store: Path,
    agency: str,
    *,
    router: bool = False,
    encryption: bool = True,
    valid_days: int = 365,
    passphrase: bytes | None = None,
    now: datetime | None = None,
) -> AgencyKeys:
    """Create a signing key (and an X25519 key) for ``agency`` and trust their public halves.

    The trust store is created when missing and written atomically.
    """
    moment = (now or datetime.now(UTC)).replace(microsecond=0)
    until = moment + timedelta(days=valid_days)
    store = load_trust_store(trust_store) if trust_store.exists() else TrustStore(agencies={})
    signing = generate_signing_key(agency)
    signing_path = save_signing_key(signing, key_dir, passphrase=passphrase)
    store = store.with_key(
        TrustedKey(
            key_id=signing.key_id,
            agency=AgencyId(agency),
            use="sign",
            algorithm="ed25519",
            public_key=public_key_bytes(signing.public_key),
            not_before=moment,
            not_after=until,
        ),
        router=True if router else None,
    )
    keypair: EncryptionKeyPair | None = None
    enc_path: Path | None = None
    if encryption:
        keypair = generate_encryption_keypair()
        enc_path = encryption_key_path(key_dir, agency, keypair)
        save_private_key(keypair, enc_path, passphrase=passphrase)
        public = x25519_public_bytes(keypair.public_key)
        store = store.with_key(
            TrustedKey(
                key_id=key_id_for("x25519", public),
                agency=AgencyId(agency),
                use="encrypt",
                algorithm="x25519",
                public_key=public,
                not_before=moment,
                not_after=until,
            )
        )
    save_trust_store(store, trust_store)
    return AgencyKeys(signing, signing_path, keypair, enc_path)
