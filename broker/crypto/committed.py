"""Commitments and sealing together: what a publisher signs and what a router or recipient
checks (the scheme is :mod:`broker.crypto.commitments`; docs/EVENTS.md, "Commitments").

A sealed value carries its commitment salt inside (``msht-sealed/v3``), so a proof entry
for it is ``None``; every other disclosed value's salt is in the proof.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from broker.crypto.commitments import (
    SCHEME,
    Opening,
    check_proof,
    check_root,
    commit,
    leaf_set,
    make_proof,
    present_slots,
    slots_where,
)
from broker.crypto.sealing import is_sealed
from broker.errors import CommitmentError
from broker.events.envelope import Envelope
from broker.events.paths import Step, encode_steps
from broker.events.proof import Commitment, Entry
from broker.events.schemas import SchemaRegistry, SchemaVersion, registry

SaltOf = Callable[[Sequence[Step]], bytes | None]
"""The commitment salt of the value at a place (what the sealer puts inside a sealed value)."""


@dataclass(frozen=True)
class Committed:
    """A payload committed to, sealed, with the header commitment and the proof it needs."""

    payload: dict[str, Any] = field(repr=False)
    commitment: Commitment
    proof: tuple[Entry, ...] = field(repr=False)
    opening: Opening = field(repr=False)


def salt_lookup(opening: Opening) -> SaltOf:
    """The :data:`SaltOf` of an opening."""
    return lambda steps: opening.salt_at(encode_steps(steps))


def sealed_slots(version: SchemaVersion, payload: Mapping[str, Any]) -> set[int]:
    """The slots whose value in ``payload`` is sealed."""
    return slots_where(leaf_set(version), payload, is_sealed)


def commit_payload(
    payload: Mapping[str, Any],
    version: SchemaVersion,
    seal: Callable[[Mapping[str, Any], SaltOf], dict[str, Any]] | None = None,
) -> Committed:
    """Commit to every value of ``payload`` (in its decoded shape: every field present), then
    seal it with ``seal`` (given the salts, which go inside the sealed values). A value that
    was already sealed is committed as its sealed text, its salt in the proof."""
    opening = commit(payload, version)
    sealed = seal(payload, salt_lookup(opening)) if seal is not None else dict(payload)
    inside = sealed_slots(version, sealed) - sealed_slots(version, payload)
    proof = make_proof(opening, lambda i: True, inside.__contains__)
    return Committed(sealed, Commitment(SCHEME, opening.root, opening.size), proof, opening)


def writer_of(envelope: Envelope, reg: SchemaRegistry | None = None) -> SchemaVersion:
    """The payload schema version the envelope's commitments are over (its writer's)."""
    return (reg or registry()).by_fingerprint(envelope.header.payload_schema)


def check_committed(
    envelope: Envelope,
    opened: Mapping[str, Any],
    sealed_salts: Mapping[bytes, bytes],
    *,
    original: bool,
    reg: SchemaRegistry | None = None,
    unsalted: Mapping[bytes, str] | None = None,
) -> Opening:
    """Check that ``opened`` (the envelope's payload, sealed values opened, with the salts
    they carried) reproduces the header's commitment root with the envelope's proof.

    Raises :class:`CommitmentError` naming the field or the part that does not fit.
    """
    header = envelope.header
    commitment = header.commitment
    if commitment is None or envelope.proof is None:
        raise CommitmentError(f"event {header.event_id}: carries no commitments")
    if commitment.scheme != SCHEME:
        raise CommitmentError(
            f"header.commitment.scheme: {commitment.scheme!r} is not {SCHEME!r}, the scheme "
            "this build checks"
        )
    version = writer_of(envelope, reg)
    size = leaf_set(version).size
    if commitment.leaves != size:
        raise CommitmentError(
            f"header.commitment.leaves: {commitment.leaves}, but the leaf set of "
            f"{version.name} v{version.version} has {size}"
        )
    opening = check_proof(
        opened, version, envelope.proof, sealed_salts, original=original, unsalted=unsalted
    )
    check_root(opening, commitment.root, f"event {header.event_id}")
    return opening


def view_proof(
    opening: Opening,
    version: SchemaVersion,
    original: Mapping[str, Any],
    view: Mapping[str, Any],
    withheld: Callable[[Sequence[Step]], bool],
) -> tuple[Entry, ...]:
    """The proof of a view built from ``original`` (whose places ``opening`` holds): every
    value at a place ``withheld`` picks is given by hash only, every sealed one's salt is
    inside it."""
    # The original's places were found when its commitments were checked: no second walk.
    places = opening.steps or {p.index: p.steps for p in present_slots(leaf_set(version), original)}
    return view_proof_of(
        opening, version, view, {index for index, steps in places.items() if withheld(steps)}
    )


def view_proof_of(
    opening: Opening,
    version: SchemaVersion,
    view: Mapping[str, Any],
    hidden: AbstractSet[int],
    inside: AbstractSet[int] | None = None,
) -> tuple[Entry, ...]:
    """:func:`view_proof` given the slots the view withholds (``hidden``; slots without a
    value may be among them) and, when the caller knows them, the slots whose value the
    view seals (``inside``; otherwise found by walking ``view``)."""
    sealed = sealed_slots(version, view) if inside is None else inside
    return make_proof(opening, lambda i: i not in hidden, sealed.__contains__)
