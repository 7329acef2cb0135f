"""X25519 encryption keys for sealed fields: generate, name, save and load.

A partner's encryption key sits in the trust store beside its signing keys. Its id is
``x25519:`` followed by the first 16 bytes (32 hex digits) of SHA-256 over the raw 32-byte
public key, so the same key has the same id wherever it is written down.

Private keys are written as PKCS#8 PEM (encrypted with a passphrase when one is given)
with mode 0600; a private key file that group or others can read is refused on load.
Public keys are written as SubjectPublicKeyInfo PEM or, for YAML files, as the raw key in
unpadded base64url (:func:`public_key_to_text`).
"""

from __future__ import annotations

import hashlib
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from broker.crypto.b64 import b64url, raw_key_from_text
from broker.crypto.private_files import write_file
from broker.errors import ConfigError, KeyFileError
from broker.types import KeyId

KEY_ID_PREFIX = "x25519:"
"""Every encryption key id starts with this, so it is never mistaken for a signing key id."""

_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def public_key_bytes(public_key: X25519PublicKey) -> bytes:
    """The raw 32-byte public key (RFC 7748 u-coordinate)."""
    return public_key.public_bytes(*_RAW)


def key_fingerprint(public_key: X25519PublicKey) -> bytes:
    """SHA-256 of the raw public key; key ids and sealed-value key hints are prefixes of it."""
    return hashlib.sha256(public_key_bytes(public_key)).digest()


def encryption_key_id(public_key: X25519PublicKey) -> KeyId:
    """The key id of an X25519 public key: ``x25519:`` + 32 hex digits of its fingerprint."""
    return KeyId(KEY_ID_PREFIX + key_fingerprint(public_key)[:16].hex())


@dataclass(frozen=True)
class EncryptionKeyPair:
    """A partner's X25519 key pair. The private half never leaves the partner."""

    private_key: X25519PrivateKey = field(repr=False)

    @property
    def public_key(self) -> X25519PublicKey:
        """The public half, which senders seal fields to."""
        return self.private_key.public_key()

    @property
    def key_id(self) -> KeyId:
        """The fingerprint-based id of the public key."""
        return encryption_key_id(self.public_key)


def generate_encryption_keypair() -> EncryptionKeyPair:
    """A fresh X25519 key pair from the operating system's random source."""
    return EncryptionKeyPair(X25519PrivateKey.generate())


def public_key_to_text(public_key: X25519PublicKey) -> str:
    """The raw public key as unpadded base64url (43 characters), for YAML and JSON."""
    return b64url(public_key_bytes(public_key))


def public_key_from_text(text: str) -> X25519PublicKey:
    """Inverse of :func:`public_key_to_text`."""
    return X25519PublicKey.from_public_bytes(raw_key_from_text(text, "X25519"))


def public_key_to_pem(public_key: X25519PublicKey) -> str:
    """The public key as SubjectPublicKeyInfo PEM."""
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def load_public_key_pem(pem: str | bytes) -> X25519PublicKey:
    """An X25519 public key from SubjectPublicKeyInfo PEM; anything else is refused."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise KeyFileError(f"X25519 public key: not a PEM public key ({exc})") from exc
    if not isinstance(key, X25519PublicKey):
        raise KeyFileError(f"X25519 public key: PEM holds a {type(key).__name__}, not X25519")
    return key


def save_private_key(
    keypair: EncryptionKeyPair,
    path: Path,
    *,
    passphrase: bytes | None = None,
    overwrite: bool = False,
) -> None:
    """Write the private key as PKCS#8 PEM readable only by its owner (mode 0600)."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    pem = keypair.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    try:
        write_file(path, pem, mode=0o600, overwrite=overwrite)
    except ConfigError as exc:
        raise KeyFileError(f"{exc} (key file)") from exc


def load_private_key(path: Path, *, passphrase: bytes | None = None) -> EncryptionKeyPair:
    """Read a private key written by :func:`save_private_key`.

    Refuses a file that group or others may read, a wrong passphrase, and a key that is not
    X25519, each with a message naming the file.
    """
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the key file ({exc.strerror})") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"{path}: private key is readable by others (mode {stat.S_IMODE(mode):o}); chmod 600 it"
        )
    try:
        key = serialization.load_pem_private_key(data, password=passphrase or None)
    except TypeError as exc:
        raise KeyFileError(f"{path}: passphrase missing or not needed ({exc})") from exc
    except ValueError as exc:
        raise KeyFileError(f"{path}: not a PEM private key, or wrong passphrase") from exc
    if not isinstance(key, X25519PrivateKey):
        raise KeyFileError(f"{path}: holds a {type(key).__name__}, not an X25519 key")
    return EncryptionKeyPair(key)
