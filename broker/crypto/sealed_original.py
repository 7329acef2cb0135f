"""A publisher's original in one pass: commit to every value, seal the tagged ones to the
router, and write the proof (issue 19).

:func:`broker.crypto.committed.commit_payload` does the same in general steps: it commits
(one walk of the payload and one of the tree), deep-copies the payload and walks it again
per sealed path to seal, walks the payload and the sealed copy again to find which values
it sealed, and walks the tree once more for the proof. A publisher seals every event of a
bulk export, so here the tree is walked once (its hashes and the proof together) and the
tagged values are sealed in the payload the caller hands over, found by their slot.

The result is what :func:`commit_payload` gives for the same payload (the same scheme,
``msht-commit/v1``, and ``msht-sealed/v3``): with the same random byte stream, the same root
and proof (tests/unit/test_sealed_original.py), and a sealed payload that opens to the same
values with the same salts.
"""

from __future__ import annotations

import os
import struct
from bisect import bisect_left
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from broker.crypto.commitments import (
    HASH_LEN,
    SALT_LEN,
    SCHEME,
    Present,
    Withheld,
    leaf_hash,
    leaf_set,
    node_hash,
    present_slots,
)
from broker.crypto.sealed_fields import record_protected_paths
from broker.crypto.sealing import RecipientSealer, SealScope
from broker.errors import EncodeError
from broker.events.paths import Step
from broker.events.proof import Commitment, Entry
from broker.events.schemas import SchemaVersion
from broker.types import PartnerId


@dataclass(frozen=True)
class SealedOriginal:
    """A payload committed to and sealed, with the header commitment and the proof."""

    payload: dict[str, Any] = field(repr=False)
    commitment: Commitment
    proof: tuple[Entry, ...] = field(repr=False)


def _pattern(steps: Sequence[Step]) -> str:
    """The seal-path syntax of a concrete place: ``victims[0].person.surname`` is
    ``victims[].person.surname`` (the form :func:`record_protected_paths` lists)."""
    text = ""
    for kind, value in steps:
        if kind == "index":
            text += "[]"
        else:
            text += f".{value}" if text else str(value)
    return text


_PROTECTED: dict[tuple[bytes, str], dict[int, bool]] = {}
"""Per (schema version, record): whether the value at a slot is sealed, by slot index. A slot
is one abstract place in a fixed leaf set, so the answer never changes; it is worked out
the first time the slot holds a value."""


def _protected_slots(version: SchemaVersion, record_name: str) -> dict[int, bool]:
    key = (version.fingerprint, record_name)
    found = _PROTECTED.get(key)
    if found is None:
        found = _PROTECTED[key] = {}
    return found


def commit_and_seal(
    payload: MutableMapping[str, Any],
    version: SchemaVersion,
    record_name: str,
    scope: SealScope,
    recipient: PartnerId,
    public_key: X25519PublicKey,
    *,
    random: Callable[[int], bytes] = os.urandom,
) -> SealedOriginal:
    """Commit to every value of ``payload`` (decoded shape: every field present) with fresh
    salts, seal each tagged value (:func:`record_protected_paths`) to ``recipient`` with its
    salt inside, and build the proof that discloses every value.

    ``payload`` is sealed **in place** (the caller's own copy, not used in clear after).
    Raises as :func:`broker.crypto.commitments.commit` (``TooManyItemsError``,
    ``EncodeError``) and :func:`broker.crypto.sealing.seal_fields` (``SealingError`` for a
    tagged value already sealed).
    """
    leaves = leaf_set(version)
    present = present_slots(leaves, payload)  # in slot order
    fresh = random(SALT_LEN * len(present))
    salts = [fresh[n * SALT_LEN : (n + 1) * SALT_LEN] for n in range(len(present))]
    hashes: list[bytes] = []
    for p, salt in zip(present, salts, strict=True):
        try:
            hashes.append(leaf_hash(p.path, salt, p.encode(p.value)))
        except (ValueError, TypeError, KeyError, struct.error) as exc:
            raise EncodeError(f"{p.where}: the value does not fit its schema type ({exc})") from exc

    sealed = _seal(payload, present, salts, version, record_name, scope, recipient, public_key)
    # The proof entry of each value: its salt, or none when the salt is sealed inside it.
    entries = [None if n in sealed else salt for n, salt in enumerate(salts)]
    indices = [p.index for p in present]
    stand_in = _StandIns(random)
    proof: list[Entry] = []
    append = proof.append

    def mth(lo: int, hi: int, a: int, b: int) -> bytes:
        # The values in slots lo..hi-1 are present[a:b]. Called ~200 times per referral.
        if a == b:
            found = stand_in()  # no value under it: a random stand-in
            append(Withheld(hi - lo, found))
            return found
        size = hi - lo
        if size == 1:
            append(entries[a])
            return hashes[a]
        k = 1 << ((size - 1).bit_length() - 1)  # split(): the largest power of 2 below size
        mid = bisect_left(indices, lo + k, a, b)
        left = mth(lo, lo + k, a, mid)
        return node_hash(left, mth(lo + k, hi, mid, b))

    root = mth(0, leaves.size, 0, len(present))
    return SealedOriginal(dict(payload), Commitment(SCHEME, root, leaves.size), tuple(proof))


class _StandIns:
    """Random stand-in hashes for the subtrees without a value, drawn 16 at a time (a
    referral has ~40: one system call each was ~3 % of sealing it). The bytes are the same
    stream :func:`~broker.crypto.commitments.commit` draws 32 at a time."""

    def __init__(self, random: Callable[[int], bytes]) -> None:
        self._random = random
        self._pool = b""
        self._at = 0

    def __call__(self) -> bytes:
        if self._at == len(self._pool):
            self._pool, self._at = self._random(HASH_LEN * 16), 0
        self._at += HASH_LEN
        return self._pool[self._at - HASH_LEN : self._at]


def _seal(
    payload: MutableMapping[str, Any],
    present: Sequence[Present],
    salts: Sequence[bytes],
    version: SchemaVersion,
    record_name: str,
    scope: SealScope,
    recipient: PartnerId,
    public_key: X25519PublicKey,
) -> set[int]:
    """Seal, in ``payload``, every present tagged value that is not null; the positions in
    ``present`` of the values sealed."""
    tagged = frozenset(record_protected_paths(record_name))
    protected = _protected_slots(version, record_name)
    sealer = RecipientSealer(scope, recipient, public_key)
    sealed: set[int] = set()
    for n, p in enumerate(present):
        hit = protected.get(p.index)
        if hit is None:
            hit = protected[p.index] = _pattern(p.steps) in tagged
        if not hit or p.value is None:
            continue
        container: Any = payload
        for _kind, step in p.steps[:-1]:
            container = container[step]
        container[p.steps[-1][1]] = sealer.seal(p.steps, p.value, salts[n])
        sealed.add(n)
    return sealed
