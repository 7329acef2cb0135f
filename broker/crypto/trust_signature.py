"""The operator's signature on the trust store, and loading a trust store only if it is authentic.

The signature travels inside the trust store file, as its last line, a YAML comment::

    # msht-trust-signature: v1 signer=ed25519:<32 hex> signature=<unpadded base64url>

so the file stays one file (written and replaced in one atomic rename, copied and mailed as
one), and a reader that does not check signatures still parses it. The signature is Ed25519
by the operator key over ``b"msht-trust-store-v1\\x00"`` followed by every byte of the file
before that line (the *body*, UTF-8, exactly as stored: no re-serialisation). The body's
SHA-256 (``sha256:<hex>``) names the trust store version; every process logs it on load.

The operator's public key does not come from the trust store (a store that vouches for
itself proves nothing): each process is given it out of band, in ``MSHT_OPERATOR_KEY``.
When it is set, a trust store that is unsigned, signed by another key, or altered after
signing is refused. The operator's private key is ``msht-operator.<8 hex>.ed25519.pem`` in
the operator's key directory (``msht keys generate --operator``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker.crypto.b64 import b64url, from_b64url
from broker.crypto.signing_keys import (
    SigningKey,
    load_signing_key,
    public_key_from_text,
    public_key_to_text,
    signing_key_id,
)
from broker.crypto.trust import TrustStore, parse_trust_store
from broker.errors import KeyFileError, TrustStoreError, TrustStoreSignatureError
from broker.logging import get_logger
from broker.settings import Settings
from broker.types import AgencyId, KeyId

OPERATOR = AgencyId("msht-operator")
"""The name the operator's key files carry (never an agency in the trust store)."""

DOMAIN = b"msht-trust-store-v1\x00"
"""Prefix of the signed bytes, so a trust-store signature is never valid for anything else."""

TRAILER = "# msht-trust-signature: "
_TRAILER = re.compile(
    r"^# msht-trust-signature: v1 signer=(?P<signer>ed25519:[0-9a-f]{32}) "
    r"signature=(?P<signature>[A-Za-z0-9_-]{86})$"
)

_log = get_logger(__name__)


@dataclass(frozen=True)
class TrustSignature:
    """Who signed a trust store body, and the signature."""

    signer: KeyId
    signature: bytes


@dataclass(frozen=True)
class LoadedTrustStore:
    """A trust store as loaded: its content, its version digest, and who signed it."""

    store: TrustStore
    digest: str
    signer: KeyId | None
    path: Path


def _b64(data: bytes) -> str:
    return b64url(data)


def trust_digest(body: str) -> str:
    """``sha256:<hex>`` of the body: the name of this trust store version."""
    return "sha256:" + hashlib.sha256(body.encode("utf-8")).hexdigest()


def split_signature(text: str, *, source: str = "trust store") -> tuple[str, TrustSignature | None]:
    """The body and the signature of a trust store's text (``None`` when it is unsigned)."""
    lines = text.splitlines(keepends=True)
    if not lines or not lines[-1].startswith(TRAILER):
        if any(line.startswith(TRAILER) for line in lines):
            raise TrustStoreSignatureError(
                f"{source}: the signature line is not the last line (text was added after it)"
            )
        return text, None
    match = _TRAILER.match(lines[-1].rstrip("\n"))
    if match is None:
        raise TrustStoreSignatureError(f"{source}: the signature line is malformed")
    body = "".join(lines[:-1])
    if any(line.startswith(TRAILER) for line in lines[:-1]):
        raise TrustStoreSignatureError(f"{source}: more than one signature line")
    try:
        signature = from_b64url(match["signature"])
    except ValueError as exc:
        raise TrustStoreSignatureError(f"{source}: the signature is not base64url") from exc
    return body, TrustSignature(KeyId(match["signer"]), signature)


def sign_trust_text(text: str, operator: SigningKey) -> str:
    """``text`` (any earlier signature dropped) with the operator's signature line appended."""
    body, _ = split_signature(text)
    if not body.endswith("\n"):
        body += "\n"
    signature = operator.private_key.sign(DOMAIN + body.encode("utf-8"))
    return f"{body}{TRAILER}v1 signer={operator.key_id} signature={_b64(signature)}\n"


def verify_trust_text(
    text: str, operator_key: Ed25519PublicKey, *, source: str = "trust store"
) -> TrustSignature:
    """The signature of ``text`` if ``operator_key`` made it over exactly this body; else
    :class:`TrustStoreSignatureError` saying which of unsigned, other signer, altered."""
    body, signature = split_signature(text, source=source)
    expected = signing_key_id(operator_key)
    if signature is None:
        raise TrustStoreSignatureError(
            f"{source}: the trust store is not signed; the operator signs it with "
            f"`msht trust sign` (expected signer {expected})"
        )
    if signature.signer != expected:
        raise TrustStoreSignatureError(
            f"{source}: signed by {signature.signer}, not by the operator key {expected} "
            "this process trusts (MSHT_OPERATOR_KEY)"
        )
    try:
        operator_key.verify(signature.signature, DOMAIN + body.encode("utf-8"))
    except InvalidSignature as exc:
        raise TrustStoreSignatureError(
            f"{source}: the signature does not match the content (altered after signing)"
        ) from exc
    return signature


def parse_operator_key(value: str) -> Ed25519PublicKey:
    """The operator's public key from ``MSHT_OPERATOR_KEY``: unpadded base64url of the raw
    key, or the path of a file holding it (a ``.pub.pem`` or a ``msht keys export`` file)."""
    text = value.strip()
    if re.fullmatch(r"[A-Za-z0-9_-]{43}", text):
        return public_key_from_text(text)
    path = Path(text)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(
            f"MSHT_OPERATOR_KEY: neither a base64url public key nor a readable file "
            f"({path}: {exc.strerror})"
        ) from exc
    if b"-----BEGIN PUBLIC KEY-----" in data:
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError as exc:
            raise KeyFileError(f"MSHT_OPERATOR_KEY {path}: not a PEM public key") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFileError(f"MSHT_OPERATOR_KEY {path}: not an Ed25519 public key")
        return key
    match = re.search(rb"operator_public_key:\s*([A-Za-z0-9_-]{43})", data)
    if match is None:
        raise KeyFileError(f"MSHT_OPERATOR_KEY {path}: holds no operator public key")
    return public_key_from_text(match.group(1).decode("ascii"))


def operator_key_from_settings(settings: Settings) -> Ed25519PublicKey | None:
    """The operator public key this process checks trust stores against, if configured."""
    return parse_operator_key(settings.operator_key) if settings.operator_key else None


def load_authentic_trust_store(
    path: Path, operator_key: Ed25519PublicKey | None, *, component: str = "msht"
) -> LoadedTrustStore:
    """Read the trust store at ``path``; with ``operator_key``, only if it signed it.

    Logs the version (digest) loaded and whether its signature was checked.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TrustStoreError(f"{path}: cannot read the trust store ({exc.strerror})") from exc
    body, signature = split_signature(text, source=str(path))
    if operator_key is not None:
        signature = verify_trust_text(text, operator_key, source=str(path))
    store = parse_trust_store(text, source=str(path))
    loaded = LoadedTrustStore(
        store, trust_digest(body), signature.signer if signature else None, path
    )
    if operator_key is None:
        _log.warning(
            "trust store loaded without checking its signature (MSHT_OPERATOR_KEY not set)",
            component=component, path=str(path), digest=loaded.digest,
        )  # fmt: skip
    else:
        _log.info(
            "trust store loaded", component=component, path=str(path), digest=loaded.digest,
            signer=loaded.signer,
        )  # fmt: skip
    return loaded


def trust_store_from_settings(settings: Settings, *, component: str = "msht") -> LoadedTrustStore:
    """The configured trust store, checked against ``MSHT_OPERATOR_KEY`` when it is set."""
    return load_authentic_trust_store(
        settings.trust_store_path, operator_key_from_settings(settings), component=component
    )


# --- the operator's own key -----------------------------------------------------------------


def operator_key_files(key_dir: Path) -> list[Path]:
    """The operator's private key files in ``key_dir`` (oldest first)."""
    return sorted(
        (p for p in key_dir.glob(f"{OPERATOR}.*.ed25519.pem") if not p.name.endswith(".pub.pem")),
        key=lambda p: p.stat().st_mtime,
    )


def find_operator_key(key_dir: Path, passphrase: bytes | None) -> SigningKey | None:
    """The operator's newest private key in ``key_dir``, or ``None`` when there is none."""
    files = operator_key_files(key_dir) if key_dir.is_dir() else []
    if not files:
        return None
    return load_signing_key(files[-1], OPERATOR, passphrase=passphrase)


def operator_public_text(key: SigningKey) -> str:
    """The operator public key as ``MSHT_OPERATOR_KEY`` takes it."""
    return public_key_to_text(key.public_key)
