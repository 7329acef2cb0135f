"""The publisher's one-pass commit and seal (broker/crypto/sealed_original.py) gives what the
general steps (commit, seal_protected, make_proof: broker/crypto/committed.py) give."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.crypto.commitments import (
    check_proof,
    check_root,
    commit,
    leaf_set,
    make_proof,
    present_slots,
)
from broker.crypto.committed import salt_lookup, sealed_slots
from broker.crypto.sealed_fields import open_protected_salted, seal_protected
from broker.crypto.sealed_original import commit_and_seal
from broker.crypto.sealing import SealScope, seal_fields
from broker.errors import SealingError, TooManyItemsError
from broker.events import codec
from broker.events.schemas import SchemaVersion, registry
from broker.types import AgencyId, EventId, PartnerId
from tests.unit import event_samples as samples

ROUTER = PartnerId("router")
KEY = X25519PrivateKey.generate()
SCOPE = SealScope(AgencyId("met-police"), EventId("0b9f3c52-1d2e-4f7a-9c3b-5e6d7f8a9b0c"), "x")
RECORDS: dict[str, Callable[[], dict[str, Any]]] = {
    "Referral": samples.referral,
    "CaseUpdate": samples.case_update,
    "Alert": samples.alert,
}


def _decoded(record: str, payload: dict[str, Any]) -> tuple[SchemaVersion, dict[str, Any]]:
    version = registry().current(record)
    return version, codec.decode_body(codec.encode_body(version, payload), version, version)


def _seeded(seed: int) -> Callable[[int], bytes]:
    """A seeded random byte stream: the same bytes however they are drawn (16 then 32, or
    48 at once), as from the system's generator."""
    stream = hashlib.shake_256(seed.to_bytes(8, "big")).digest(1 << 16)
    at = 0

    def draw(n: int) -> bytes:
        nonlocal at
        at += n
        return stream[at - n : at]

    return draw


def _general(
    record: str, version: SchemaVersion, plain: dict[str, Any], seed: int
) -> tuple[bytes, tuple[Any, ...], set[int], dict[str, Any]]:
    """What commit_payload does, step by step, with a seeded random source."""
    opening = commit(plain, version, random=_seeded(seed))
    name = version.name
    sealed = seal_protected(
        plain, name, SCOPE, ROUTER, KEY.public_key(), salts=salt_lookup(opening)
    )
    inside = sealed_slots(version, sealed) - sealed_slots(version, plain)
    proof = make_proof(opening, lambda i: True, inside.__contains__)
    return opening.root, proof, inside, sealed


def _payloads(data: st.DataObject) -> tuple[str, SchemaVersion, dict[str, Any]]:
    """A sample payload of a drawn record with a drawn set of its nullable values nulled and
    arrays cut short (every shape the publisher meets: absent values, short arrays)."""
    record = data.draw(st.sampled_from(sorted(RECORDS)))
    version, plain = _decoded(record, RECORDS[record]())
    for p in present_slots(leaf_set(version), plain):
        if data.draw(st.booleans()):
            try:
                p.encode(None)
            except (ValueError, TypeError, KeyError):
                continue
            node: Any = plain
            for _kind, key in p.steps[:-1]:
                node = node[key]
            node[p.steps[-1][1]] = None
    return record, version, plain


@settings(max_examples=40, deadline=None)
@given(st.data(), st.integers(min_value=0, max_value=2**32))
def test_the_root_and_proof_are_the_general_steps_given_the_same_random_source(
    data: st.DataObject, seed: int
) -> None:
    _record, version, plain = _payloads(data)
    root, proof, _inside, _sealed = _general(_record, version, plain, seed)
    one = commit_and_seal(
        copy.deepcopy(plain), version, version.name, SCOPE, ROUTER, KEY.public_key(),
        random=_seeded(seed),
    )  # fmt: skip
    assert one.commitment.root == root
    assert one.commitment.leaves == leaf_set(version).size
    assert one.proof == proof


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_the_same_places_are_sealed_and_open_to_the_values_with_their_salts(
    data: st.DataObject,
) -> None:
    _record, version, plain = _payloads(data)
    _root, _proof, inside, sealed_ref = _general(_record, version, plain, 0)
    one = commit_and_seal(
        copy.deepcopy(plain), version, version.name, SCOPE, ROUTER, KEY.public_key()
    )
    assert sealed_slots(version, one.payload) == sealed_slots(version, sealed_ref)
    opened, salts, unsalted = open_protected_salted(one.payload, SCOPE, ROUTER, [KEY])
    assert opened == plain
    assert not unsalted
    # What the router checks of an original: every value disclosed, the signed root.
    opening = check_proof(opened, version, one.proof, salts, original=True)
    check_root(opening, one.commitment.root, "original")
    assert len(salts) == len(inside)


def test_the_payload_is_sealed_in_place() -> None:
    version, plain = _decoded("Referral", samples.referral())
    one = commit_and_seal(plain, version, version.name, SCOPE, ROUTER, KEY.public_key())
    assert plain["victim"]["surname"] == one.payload["victim"]["surname"]
    assert plain["victim"]["surname"] != "Testova"


def test_a_tagged_value_already_sealed_is_refused_as_seal_fields_refuses_it() -> None:
    version, plain = _decoded("Referral", samples.referral())
    pre = seal_fields(plain, ["victim.surname"], SCOPE, ROUTER, KEY.public_key())
    with pytest.raises(SealingError, match=r"victim\.surname is already sealed"):
        seal_protected(pre, version.name, SCOPE, ROUTER, KEY.public_key())
    with pytest.raises(SealingError, match=r"victim\.surname is already sealed"):
        commit_and_seal(pre, version, version.name, SCOPE, ROUTER, KEY.public_key())


def test_an_array_over_its_maximum_is_refused_naming_the_field() -> None:
    version, plain = _decoded("CaseUpdate", samples.case_update())
    plain["victims"] = [copy.deepcopy(plain["victims"][0]) for _ in range(21)]
    with pytest.raises(TooManyItemsError, match=r"victims: 21 items, over the schema's maximum"):
        commit_and_seal(plain, version, version.name, SCOPE, ROUTER, KEY.public_key())
