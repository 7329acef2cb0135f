"""Unpadded base64url, as keys and signatures are spelt in the trust store and key files.

Decoding accepts only the one canonical spelling of a byte string: the same bytes must
never have two accepted spellings (a verifier comparing text, or a digest over the file,
would otherwise disagree with one comparing bytes).
"""

from __future__ import annotations

import base64
import binascii
import re

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
