"""Agency Ed25519 signing keys: generate, name, save and load.

A signing key's id is ``ed25519:`` followed by the first 16 bytes (32 hex digits) of
SHA-256 over the raw 32-byte public key (RFC 8032 encoding), so anyone holding the public
key computes the same id. Encryption keys (``x25519:``,
:mod:`broker.crypto.encryption_keys`) use the same rule with their own prefix, so a
signing id is never mistaken for an encryption id.

Private keys are PKCS#8 PEM, encrypted when a passphrase is given, written with mode 0600;
a private key file that group or others may read is refused on load.
"""

from __future__ import annotations

import hashlib
import stat
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from broker.crypto.b64 import b64url, raw_key_from_text
from broker.crypto.private_files import write_file
from broker.errors import ConfigError, KeyFileError
from broker.types import AgencyId, KeyId

KEY_ID_PREFIX = "ed25519:"
"""Every signing key id starts with this."""

_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def public_key_bytes(public_key: Ed25519PublicKey) -> bytes:
    """The raw 32-byte Ed25519 public key."""
    return public_key.public_bytes(*_RAW)


def signing_key_id(public_key: Ed25519PublicKey | bytes) -> KeyId:
    """``ed25519:`` + hex of the first 16 bytes of SHA-256(raw public key)."""
    raw = public_key if isinstance(public_key, bytes) else public_key_bytes(public_key)
    return KeyId(KEY_ID_PREFIX + hashlib.sha256(raw).digest()[:16].hex())


@dataclass(frozen=True)
class SigningKey:
    """An agency's Ed25519 private key, with the agency it signs for."""

    agency: AgencyId
    private_key: Ed25519PrivateKey = field(repr=False)

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The public half, which goes in the trust store."""
        return self.private_key.public_key()

    @cached_property
    def key_id(self) -> KeyId:
        """The fingerprint-based id of the public key (computed once: the router signs
        every view and audit record with one key)."""
        return signing_key_id(self.public_key)


def generate_signing_key(agency: str) -> SigningKey:
    """A fresh Ed25519 key for ``agency`` from the operating system's random source."""
    return SigningKey(AgencyId(agency), Ed25519PrivateKey.generate())


def public_key_to_text(public_key: Ed25519PublicKey) -> str:
    """The raw public key as unpadded base64url (43 characters), as the trust store holds it."""
    return b64url(public_key_bytes(public_key))


def public_key_from_text(text: str) -> Ed25519PublicKey:
    """Inverse of :func:`public_key_to_text`; :class:`KeyFileError` if it is not a raw key."""
    return Ed25519PublicKey.from_public_bytes(raw_key_from_text(text, "Ed25519"))


def key_file_stem(key: SigningKey) -> str:
    """``<agency>.<first 8 hex of the key id>``: the name both key files share."""
    return f"{key.agency}.{key.key_id.removeprefix(KEY_ID_PREFIX)[:8]}"


def save_signing_key(
    key: SigningKey,
    directory: Path,
    *,
    passphrase: bytes | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``<stem>.ed25519.pem`` (private, 0600) and ``<stem>.ed25519.pub.pem``.

    Returns the private key's path. Refuses to overwrite an existing file unless asked.
    """
    stem = key_file_stem(key)
    private_path = directory / f"{stem}.ed25519.pem"
    public_path = directory / f"{stem}.ed25519.pub.pem"
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    pem = key.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    try:
        write_file(private_path, pem, mode=0o600, overwrite=overwrite)
    except ConfigError as exc:
        raise KeyFileError(f"{exc} (key file)") from exc
    public_pem = key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        public_path.write_bytes(public_pem)
    except OSError as exc:
        raise KeyFileError(f"{public_path}: cannot write ({exc.strerror})") from exc
    return private_path


def load_signing_key(path: Path, agency: str, *, passphrase: bytes | None = None) -> SigningKey:
    """Read a private key written by :func:`save_signing_key` for ``agency``.

    Refuses a file that group or others may read, a missing or wrong passphrase and a key
    that is not Ed25519, each with a message naming the file.
    """
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the key file ({exc.strerror})") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"{path}: private key is readable by group or others (mode {stat.S_IMODE(mode):o}); "
            "chmod 600 it"
        )
    try:
        private = serialization.load_pem_private_key(data, password=passphrase or None)
    except TypeError as exc:
        raise KeyFileError(f"{path}: passphrase missing or not needed ({exc})") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"{path}: not a readable private key or wrong passphrase") from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: holds a {type(private).__name__}, not an Ed25519 key")
    return SigningKey(AgencyId(agency), private)
