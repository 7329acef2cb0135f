"""A publisher's original in one pass: commit to every value, seal the tagged ones to the
router, and write the proof (issue 19).

:func:`broker.crypto.committed.commit_payload` does the same in general steps: it commits
(one walk of the payload and one of the tree), deep-copies the payload and walks it again
per sealed path to seal, walks the payload and the sealed copy again to find which values
it sealed, and walks the tree once more for the proof. A publisher seals every event of a
bulk export, so here the tree is walked once (its hashes and the proof together) and the
tagged values are sealed in the payload the caller hands over, found by their slot.

The result is what :func:`commit_payload` gives for the same payload (the same scheme,
``msht-commit/v1``, and ``msht-sealed/v3``): with the same random source, the same root and
proof (tests/unit/test_sealed_original.py), and a sealed payload that opens to the same
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
    split,
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
    present = present_slots(leaves, payload)
    fresh = random(SALT_LEN * len(present))
    by_index: dict[int, tuple[Present, bytes]] = {}
    hashes: dict[int, bytes] = {}
    for n, p in enumerate(present):
        salt = fresh[n * SALT_LEN : (n + 1) * SALT_LEN]
        try:
            hashes[p.index] = leaf_hash(p.path, salt, p.encode(p.value))
        except (ValueError, TypeError, KeyError, struct.error) as exc:
            raise EncodeError(f"{p.where}: the value does not fit its schema type ({exc})") from exc
        by_index[p.index] = (p, salt)

    sealed = _seal(payload, present, by_index, version, record_name, scope, recipient, public_key)

    indices = sorted(hashes)
    proof: list[Entry] = []

    def mth(lo: int, hi: int, first: int) -> bytes:
        # ``first``: the position in ``indices`` of the first slot at or after ``lo``.
        if first == len(indices) or indices[first] >= hi:
            found = random(HASH_LEN)  # no value under it: a random stand-in
            proof.append(Withheld(hi - lo, found))
            return found
        if hi - lo == 1:
            proof.append(None if lo in sealed else by_index[lo][1])
            return hashes[lo]
        k = split(hi - lo)
        left = mth(lo, lo + k, first)
        return node_hash(left, mth(lo + k, hi, bisect_left(indices, lo + k, first)))

    root = mth(0, leaves.size, 0)
    return SealedOriginal(dict(payload), Commitment(SCHEME, root, leaves.size), tuple(proof))


def _seal(
    payload: MutableMapping[str, Any],
    present: Sequence[Present],
    by_index: dict[int, tuple[Present, bytes]],
    version: SchemaVersion,
    record_name: str,
    scope: SealScope,
    recipient: PartnerId,
    public_key: X25519PublicKey,
) -> set[int]:
    """Seal, in ``payload``, every present tagged value that is not null; the slots sealed."""
    tagged = frozenset(record_protected_paths(record_name))
    protected = _protected_slots(version, record_name)
    sealer = RecipientSealer(scope, recipient, public_key)
    sealed: set[int] = set()
    for p in present:
        hit = protected.get(p.index)
        if hit is None:
            hit = protected[p.index] = _pattern(p.steps) in tagged
        if not hit or p.value is None:
            continue
        container: Any = payload
        for _kind, step in p.steps[:-1]:
            container = container[step]
        container[p.steps[-1][1]] = sealer.seal(p.steps, p.value, by_index[p.index][1])
        sealed.add(p.index)
    return sealed
