"""Creating an agency's key pairs and registering their public halves in the trust store.

Every change is one step (:mod:`broker.crypto.private_files`): the private keys (mode 0600), their
public halves and the new trust store are computed and written to temporary files first,
then moved into place with the trust store last. An interrupted command leaves either all
of it or none of it. When the operator's key is given, the new trust store is signed in the
same step (:mod:`broker.crypto.trust_signature`); otherwise it is written unsigned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from broker.crypto.encryption_keys import (
    EncryptionKeyPair,
    generate_encryption_keypair,
)
from broker.crypto.encryption_keys import public_key_bytes as x25519_public_bytes
from broker.crypto.private_files import FileSet
from broker.crypto.signing_keys import (
    SigningKey,
    generate_signing_key,
    key_file_stem,
    public_key_bytes,
)
from broker.crypto.trust import (
    TrustedKey,
    TrustStore,
    dump_trust_store,
    key_id_for,
    load_trust_store,
    parse_trust_store,
)
from broker.crypto.trust_signature import sign_trust_text, split_signature
from broker.errors import TrustStoreError
from broker.types import AgencyId, KeyId

USES = ("sign", "encrypt")
"""What a key is for: Ed25519 signing or X25519 encryption (sealed fields)."""


@dataclass(frozen=True)
class AgencyKeys:
    """The key pairs just created for one agency and where the private halves were written."""

    signing: SigningKey | None
    signing_path: Path | None
    encryption: EncryptionKeyPair | None
    encryption_path: Path | None

    @property
    def key_ids(self) -> list[KeyId]:
        """The ids of the keys created, signing first."""
        ids = [self.signing.key_id] if self.signing else []
        return ids + ([self.encryption.key_id] if self.encryption else [])


def encryption_key_path(key_dir: Path, agency: str, keypair: EncryptionKeyPair) -> Path:
    """``<agency>.<8 hex>.x25519.pem``, the name :mod:`broker.crypto.keyfiles` looks for."""
    key_id = key_id_for("x25519", x25519_public_bytes(keypair.public_key))
    return key_dir / f"{agency}.{key_id.split(':', 1)[1][:8]}.x25519.pem"


def signing_key_path(key_dir: Path, key: SigningKey) -> Path:
    """``<agency>.<8 hex>.ed25519.pem``, the name :mod:`broker.crypto.keyfiles` looks for."""
    return key_dir / f"{key_file_stem(key)}.ed25519.pem"


def _private_pem(key: Ed25519PrivateKey | X25519PrivateKey, passphrase: bytes | None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def _public_pem(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _pub_path(private_path: Path) -> Path:
    return private_path.with_name(private_path.name.removesuffix(".pem") + ".pub.pem")


def stage_key(files: FileSet, path: Path, key: Ed25519PrivateKey | X25519PrivateKey,
              passphrase: bytes | None) -> None:  # fmt: skip
    """Stage a private key (0600) and its public half (``.pub.pem``) for ``path``."""
    files.add(path, _private_pem(key, passphrase), mode=0o600)
    files.add(_pub_path(path), _public_pem(key), mode=0o644)


def stage_trust_store(
    files: FileSet, store: TrustStore, path: Path, operator: SigningKey | None
) -> None:
    """Stage ``store`` as the new trust store file, signed when ``operator`` is given."""
    text = dump_trust_store(store)
    if operator is not None:
        text = sign_trust_text(text, operator)
    files.add(path, text.encode("utf-8"), mode=0o644, replace=True)


def read_store(path: Path) -> TrustStore:
    """The trust store at ``path``, or an empty one when there is no file yet."""
    return load_trust_store(path) if path.exists() else TrustStore(agencies={})


def new_signing_key(agency: str, key_dir: Path, existing: TrustStore) -> SigningKey:
    """A fresh signing key whose file name and key id are both unused (retries on a clash)."""
    for _ in range(8):
        key = generate_signing_key(agency)
        if not signing_key_path(key_dir, key).exists() and not _listed(existing, key.key_id):
            return key
    raise TrustStoreError(f"could not find an unused key name for {agency} in {key_dir}")


def new_encryption_key(agency: str, key_dir: Path, existing: TrustStore) -> EncryptionKeyPair:
    """A fresh X25519 key pair whose file name and key id are both unused."""
    for _ in range(8):
        pair = generate_encryption_keypair()
        path = encryption_key_path(key_dir, agency, pair)
        if not path.exists() and not _listed(existing, pair.key_id):
            return pair
    raise TrustStoreError(f"could not find an unused key name for {agency} in {key_dir}")


def _listed(store: TrustStore, key_id: str) -> bool:
    return any(k.key_id == key_id for e in store.agencies.values() for k in e.keys)


def trusted_signing(key: SigningKey, start: datetime, until: datetime | None) -> TrustedKey:
    """The trust store entry of a signing key valid from ``start`` to ``until``."""
    return TrustedKey(
        key_id=key.key_id,
        agency=key.agency,
        use="sign",
        algorithm="ed25519",
        public_key=public_key_bytes(key.public_key),
        not_before=start,
        not_after=until,
    )


def trusted_encryption(
    agency: str, pair: EncryptionKeyPair, start: datetime, until: datetime | None
) -> TrustedKey:
    """The trust store entry of an encryption key valid from ``start`` to ``until``."""
    public = x25519_public_bytes(pair.public_key)
    return TrustedKey(
        key_id=key_id_for("x25519", public),
        agency=AgencyId(agency),
        use="encrypt",
        algorithm="x25519",
        public_key=public,
        not_before=start,
        not_after=until,
    )


def save_operator_key(key_dir: Path, key: SigningKey, passphrase: bytes | None = None) -> Path:
    """Write the operator's private key (0600) and its public half; returns the private path."""
    path = signing_key_path(key_dir, key)
    files = FileSet()
    stage_key(files, path, key.private_key, passphrase)
    files.commit()
    return path


def sign_trust_store(path: Path, operator: SigningKey) -> str:
    """Sign the trust store at ``path`` with the operator key (replacing any earlier
    signature) in one rename; returns the signed text. A store that does not load is refused."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TrustStoreError(f"{path}: cannot read the trust store ({exc.strerror})") from exc
    body, _ = split_signature(text, source=str(path))
    parse_trust_store(body, source=str(path))  # never sign a store no process could load
    signed = sign_trust_text(body, operator)
    files = FileSet()
    files.add(path, signed.encode("utf-8"), mode=0o644, replace=True)
    files.commit()
    return signed


def generate_agency_keys(
    key_dir: Path,
    trust_store: Path,
    agency: str,
    *,
    router: bool = False,
    encryption: bool = True,
    signing: bool = True,
    valid_days: int = 365,
    passphrase: bytes | None = None,
    now: datetime | None = None,
    operator: SigningKey | None = None,
) -> AgencyKeys:
    """Create a signing key and/or an X25519 key for ``agency`` and trust their public halves.

    Everything (key files and the trust store, signed by ``operator`` when given) is written
    in one step: on any failure nothing new is left behind.
    """
    if not (signing or encryption):
        raise TrustStoreError("nothing to generate: choose a signing or an encryption key")
    moment = (now or datetime.now(UTC)).replace(microsecond=0)
    until = moment + timedelta(days=valid_days)
    store = read_store(trust_store)
    staged = FileSet()
    signing_key: SigningKey | None = None
    signing_path: Path | None = None
    keypair: EncryptionKeyPair | None = None
    enc_path: Path | None = None
    try:
        if signing:
            signing_key = new_signing_key(agency, key_dir, store)
            signing_path = signing_key_path(key_dir, signing_key)
            stage_key(staged, signing_path, signing_key.private_key, passphrase)
            store = store.with_key(
                trusted_signing(signing_key, moment, until), router=True if router else None
            )
        if encryption:
            keypair = new_encryption_key(agency, key_dir, store)
            enc_path = encryption_key_path(key_dir, agency, keypair)
            stage_key(staged, enc_path, keypair.private_key, passphrase)
            store = store.with_key(
                trusted_encryption(agency, keypair, moment, until),
                router=True if router and not signing else None,
            )
        stage_trust_store(staged, store, trust_store, operator)
    except BaseException:
        staged.discard()
        raise
    staged.commit()
    return AgencyKeys(signing_key, signing_path, keypair, enc_path)
