"""Unpadded base64url, as keys and signatures are spelt in the trust store and key files.

Decoding accepts only the one canonical spelling of a byte string: the same bytes must
never have two accepted spellings (a verifier comparing text, or a digest over the file,
would otherwise disagree with one comparing bytes).
"""

from __future__ import annotations

import base64
import binascii
import re

from broker.errors import KeyFileError

_ALPHABET = re.compile(r"^[A-Za-z0-9_-]*$")


def b64url(data: bytes) -> str:
    """``data`` as unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_b64url(text: str) -> bytes:
    """The bytes ``text`` spells; :class:`ValueError` unless it is their canonical spelling
    (unpadded base64url, no stray characters or non-zero trailing bits)."""
    if not _ALPHABET.match(text) or len(text) % 4 == 1:
        raise ValueError("not unpadded base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:
        raise ValueError("not unpadded base64url") from exc
    if b64url(raw) != text:
        raise ValueError("not the canonical spelling (stray trailing bits)")
    return raw


def raw_key_from_text(text: str, algorithm: str) -> bytes:
    """The 32 raw bytes of an ``algorithm`` public key spelt as unpadded base64url;
    :class:`~broker.errors.KeyFileError` naming the key when it is not one."""
    try:
        raw = from_b64url(text)
        if len(raw) != 32:
            raise ValueError(f"{len(raw)} bytes, not 32")
    except ValueError as exc:
        raise KeyFileError(
            f"{algorithm} public key {text[:12]!r}...: not a raw key ({exc})"
        ) from exc
    return raw
