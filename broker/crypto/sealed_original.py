"""A publisher's original: commit to every value, seal the tagged ones to the router, and
write the proof (issue 19).

:func:`broker.crypto.committed.commit_payload` does the same in general steps: after
committing it deep-copies the payload and walks it again per sealed path to seal, then walks
the payload and the sealed copy to find which values it sealed. A publisher seals every
event of a bulk export, so here the payload is walked once: its present values are
committed (:func:`~broker.crypto.commitments.commit_present`), the tagged ones sealed in the
payload the caller hands over, found by their slot, and the proof made for those slots.

The result is what :func:`commit_payload` gives for the same payload (the same scheme,
``msht-commit/v1``, and ``msht-sealed/v3``): with the same random byte stream, the same root
and proof (tests/unit/test_sealed_original.py), and a sealed payload that opens to the same
values with the same salts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from broker.crypto.commitments import (
    SCHEME,
    Present,
    commit_present,
    leaf_set,
    make_proof,
    present_slots,
)
from broker.crypto.committed import Committed
from broker.crypto.sealed_fields import record_protected_paths
from broker.crypto.sealing import RecipientSealer, SealScope
from broker.events.paths import Step
from broker.events.proof import Commitment
from broker.events.schemas import SchemaVersion
from broker.types import PartnerId


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
) -> Committed:
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
    opening = commit_present(leaves, present, random=random)
    sealed = _seal(payload, present, opening.salts, record_name, version, scope, recipient,
                   public_key)  # fmt: skip
    proof = make_proof(opening, lambda i: True, sealed.__contains__)
    return Committed(dict(payload), Commitment(SCHEME, opening.root, opening.size), proof, opening)


def _seal(
    payload: MutableMapping[str, Any],
    present: Sequence[Present],
    salts: Mapping[int, bytes],
    record_name: str,
    version: SchemaVersion,
    scope: SealScope,
    recipient: PartnerId,
    public_key: X25519PublicKey,
) -> set[int]:
    """Seal, in ``payload``, every present tagged value that is not null, with its salt
    (by slot) inside; the slots of the values sealed."""
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
        container[p.steps[-1][1]] = sealer.seal(p.steps, p.value, salts[p.index])
        sealed.add(p.index)
    return sealed
