"""A signed JSON document: the body's own bytes, the signer, the key id and an Ed25519 signature.

The signature covers a domain-separation context and the body bytes *as written*, never a
re-serialisation, so any JSON library can check it: the verifier reads the base64url body,
checks the signature over ``context || body`` and only then parses the body.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from broker.errors import ReviewError

MAX_DOCUMENT_BYTES = 2_000_000
"""Bigger documents are refused before they are parsed."""


def b64(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str, where: str) -> bytes:
    """The bytes of unpadded base64url ``text``; :class:`ReviewError` naming ``where``."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ReviewError(f"{where}: not base64url") from exc


@dataclass(frozen=True)
class SignedDocument:
    """A document as read: its format, the body (bytes and parsed) and who signed it."""

    format: str
    body_bytes: bytes
    body: dict[str, Any]
    signer: str
    key_id: str
    signature: bytes

    def verify(self, context: bytes, public_key: Ed25519PublicKey) -> None:
        """Raise :class:`ReviewError` unless ``public_key`` signed ``context || body``."""
        try:
            public_key.verify(self.signature, context + self.body_bytes)
        except InvalidSignature as exc:
            raise ReviewError(f"signature: does not verify with key {self.key_id}") from exc


def write(
    fmt: str,
    context: bytes,
    body: dict[str, Any],
    signer: str,
    key_id: str,
    private_key: Ed25519PrivateKey,
) -> bytes:
    """The document's bytes: ``body`` serialised once and signed with ``private_key``."""
    body_bytes = json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")
    signature = private_key.sign(context + body_bytes)
    document = {
        "format": fmt,
        "body": b64(body_bytes),
        "signer": signer,
        "key_id": key_id,
        "signature": b64(signature),
    }
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


def read(data: bytes, fmt: str) -> SignedDocument:
    """Parse a document of format ``fmt``; :class:`ReviewError` says what is malformed.

    The signature is not checked here (the caller knows whose key must have made it).
    """
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ReviewError(f"document: {len(data)} bytes, over {MAX_DOCUMENT_BYTES}")
    try:
        outer = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReviewError("document: not JSON") from exc
    if not isinstance(outer, dict):
        raise ReviewError("document: not a JSON object")
    if outer.get("format") != fmt:
        raise ReviewError(f"format: expected {fmt!r}, found {str(outer.get('format'))[:40]!r}")
    for name in ("body", "signer", "key_id", "signature"):
        if not isinstance(outer.get(name), str):
            raise ReviewError(f"{name}: missing or not a string")
    body_bytes = unb64(outer["body"], "body")
    try:
        body = json.loads(body_bytes)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReviewError("body: not JSON") from exc
    if not isinstance(body, dict):
        raise ReviewError("body: not a JSON object")
    return SignedDocument(
        fmt,
        body_bytes,
        body,
        outer["signer"],
        outer["key_id"],
        unb64(outer["signature"], "signature"),
    )


def text(body: dict[str, Any], name: str) -> str:
    """The string member ``name`` of ``body``; :class:`ReviewError` if it is not one."""
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise ReviewError(f"{name}: missing or not a non-empty string")
    return value


def integer(body: dict[str, Any], name: str) -> int:
    """The integer member ``name`` of ``body``; :class:`ReviewError` if it is not one."""
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ReviewError(f"{name}: missing or not an integer")
    return value
