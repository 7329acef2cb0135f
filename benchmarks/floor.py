"""The primitive floor (issue 19): what the operations the design cannot avoid cost per referral.

Routing one referral to its views needs, whatever the code around them does:

* one Ed25519 verification of the original (over the published envelope's bytes);
* one Ed25519 signature per view;
* one X25519 agreement to open the fields the publisher sealed to the router, and one (with
  a fresh ephemeral key pair) per view whose fields are sealed to its recipient;
* AES-GCM over the sealed bytes: decrypting what was sealed to the router and encrypting it
  again for each sealed view (one call each, over as many bytes as the sealed values hold);
* one Avro decode of the envelope and its payload, and one Avro encode (payload and
  envelope) per view.

Each is timed here with the libraries alone (``cryptography``, ``fastavro``), no project
code around them, over the very referrals the router reads, with ``time.process_time``. The
router's CPU per referral divided by this sum says how much of its work is overhead.
"""

from __future__ import annotations

import base64
import io
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import fastavro
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from broker.crypto.sealing import SEALED_MARK
from broker.events.codec import split_frame
from broker.events.schemas import registry


@dataclass(frozen=True)
class PrimitiveFloor:
    """CPU µs per referral of each unavoidable operation, for ``views`` views."""

    events: int
    views: int
    sealed_views: int
    sealed_bytes: float
    """Mean bytes of the sealed values of one referral (what AES-GCM runs over)."""
    verify_us: float
    sign_us: float
    """All views' signatures together."""
    x25519_us: float
    """The opening agreement and one (with its ephemeral key) per sealed view."""
    aes_gcm_us: float
    decode_us: float
    encode_us: float
    """All views' encodes together."""

    @property
    def total_us(self) -> float:
        """The floor: the sum of the above."""
        return (
            self.verify_us
            + self.sign_us
            + self.x25519_us
            + self.aes_gcm_us
            + self.decode_us
            + self.encode_us
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with the total."""
        return {**asdict(self), "total_us": self.total_us}


def _per_item(items: Sequence[Any], fn: Callable[[Any], object]) -> float:
    """CPU µs per item of ``fn`` over ``items`` (after one untimed call)."""
    fn(items[0])
    start = time.process_time()
    for item in items:
        fn(item)
    return (time.process_time() - start) / len(items) * 1e6


def _sealed_values(value: object) -> Iterable[str]:
    if isinstance(value, str):
        if value.startswith(SEALED_MARK):
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _sealed_values(item)
    elif isinstance(value, list):
        for item in value:
            yield from _sealed_values(item)


def _sealed_size(payload: dict[str, Any]) -> int:
    """Bytes of the sealed tokens in ``payload`` (base64 decoded)."""
    total = 0
    for token in _sealed_values(payload):
        text = token.rsplit(":", 1)[-1]
        total += len(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    return total


def _branches_named(envelope: dict[str, Any]) -> dict[str, Any]:
    """``envelope`` with each proof entry's union branch named (fastavro's tuple notation).

    Left to itself fastavro finds the branch of each of a proof's ~100 entries by trying
    every branch in turn, which is no part of what the design must pay (the router writes
    the proof's branches directly): the floor names them, and writes the same bytes.
    """
    proof = envelope.get("proof")
    if proof is None:
        return envelope
    entries = [
        None
        if e is None
        else (f"{_NAMESPACE}.WithheldSubtree", e)
        if isinstance(e, dict)
        else (f"{_NAMESPACE}.Salt", e)
        for e in proof["entries"]
    ]
    return {**envelope, "proof": (f"{_NAMESPACE}.Proof", {"entries": entries})}


_NAMESPACE = "org.msht.events"


def primitive_floor(envelopes: Sequence[bytes], *, views: int, sealed_views: int) -> PrimitiveFloor:
    """Time the unavoidable operations of routing each of ``envelopes`` to ``views`` views."""
    reg = registry()
    decoded: list[tuple[dict[str, Any], dict[str, Any]]] = []
    writers: list[tuple[Any, Any]] = []

    def decode(data: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
        writer, body = split_frame(data, reg=reg)
        envelope = fastavro.schemaless_reader(io.BytesIO(body), writer.parsed, None)
        assert isinstance(envelope, dict)
        payload_writer = reg.by_fingerprint(envelope["header"]["payload_schema"])
        payload = fastavro.schemaless_reader(
            io.BytesIO(envelope["payload"]), payload_writer.parsed, None
        )
        assert isinstance(payload, dict)
        return envelope, payload

    for data in envelopes:
        writer, _ = split_frame(data, reg=reg)
        envelope, payload = decode(data)
        decoded.append((_branches_named(envelope), payload))
        writers.append((writer, reg.by_fingerprint(envelope["header"]["payload_schema"])))
    decode_us = _per_item(envelopes, decode)

    def encode(index: int) -> None:
        envelope, payload = decoded[index]
        env_writer, payload_writer = writers[index]
        for _ in range(views):
            body = io.BytesIO()
            fastavro.schemaless_writer(body, payload_writer.parsed, payload)
            out = io.BytesIO()
            fastavro.schemaless_writer(
                out, env_writer.parsed, {**envelope, "payload": body.getvalue()}
            )

    indexes = list(range(len(envelopes)))
    encode_us = _per_item(indexes, encode)

    police = Ed25519PrivateKey.generate()
    police_public = police.public_key()
    router = Ed25519PrivateKey.generate()
    signatures = [police.sign(data) for data in envelopes]
    verify_us = _per_item(indexes, lambda i: police_public.verify(signatures[i], envelopes[i]))

    def sign(index: int) -> None:
        for _ in range(views):
            router.sign(envelopes[index])

    sign_us = _per_item(indexes, sign)

    router_x = X25519PrivateKey.generate()
    publisher_ephemeral = X25519PrivateKey.generate().public_key()
    partner_x = X25519PrivateKey.generate().public_key()

    def agree(_: int) -> None:
        router_x.exchange(publisher_ephemeral)
        for _ in range(sealed_views):
            X25519PrivateKey.generate().exchange(partner_x)

    x25519_us = _per_item(indexes, agree)

    sizes = [_sealed_size(payload) for _, payload in decoded]
    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    nonce = os.urandom(12)
    sealed = [aead.encrypt(nonce, os.urandom(size), None) for size in sizes]

    def aes(index: int) -> None:
        plain = aead.decrypt(nonce, sealed[index], None)
        for _ in range(sealed_views):
            aead.encrypt(nonce, plain, None)

    aes_us = _per_item(indexes, aes)
    return PrimitiveFloor(
        events=len(envelopes),
        views=views,
        sealed_views=sealed_views,
        sealed_bytes=sum(sizes) / len(sizes),
        verify_us=verify_us,
        sign_us=sign_us,
        x25519_us=x25519_us,
        aes_gcm_us=aes_us,
        decode_us=decode_us,
        encode_us=encode_us,
    )
