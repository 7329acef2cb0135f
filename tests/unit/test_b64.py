"""Keys and trust-store signatures have exactly one accepted spelling."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.crypto.b64 import b64url, from_b64url
from broker.crypto.signing_keys import generate_signing_key, public_key_from_text
from broker.crypto.signing_keys import public_key_to_text as signing_text
from broker.errors import KeyFileError

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@given(st.binary(max_size=80))
def test_every_byte_string_round_trips_through_its_spelling(data: bytes) -> None:
    assert from_b64url(b64url(data)) == data


@given(st.binary(min_size=1, max_size=80))
def test_no_other_spelling_of_the_same_bytes_is_accepted(data: bytes) -> None:
    text = b64url(data)
    for replacement in ALPHABET:
        other = text[:-1] + replacement
        if other == text:
            continue
        try:
            decoded = from_b64url(other)
        except ValueError:
            continue
        assert decoded != data, f"{other!r} spells the same bytes as {text!r}"


@pytest.mark.parametrize("suffix", ["=", "==", " ", "\n", "+", "/"])
def test_padding_white_space_and_the_standard_alphabet_are_refused(suffix: str) -> None:
    with pytest.raises(ValueError, match="base64url"):
        from_b64url(b64url(b"\x01\x02\x03\x04") + suffix)


def test_a_public_key_with_stray_trailing_bits_is_not_a_key() -> None:
    text = signing_text(generate_signing_key("met-police").public_key)
    index = ALPHABET.index(text[-1])
    # A 32-byte key leaves two unused low bits in its last character: setting one spells
    # the same key another way.
    stray = (
        text[:-1] + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[index + 1]
    )
    with pytest.raises(KeyFileError, match="canonical"):
        public_key_from_text(stray)
