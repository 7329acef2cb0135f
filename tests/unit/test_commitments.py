"""Salted hash commitments (broker/crypto/commitments.py): roots, proofs, tampering, leaf sets."""

from __future__ import annotations

import copy
import hashlib
import io
from bisect import bisect_left
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.crypto.commitments import (
    HASH_LEN,
    MASK,
    SALT_LEN,
    Entry,
    Opening,
    Withheld,
    check_proof,
    check_root,
    commit,
    leaf_set,
    make_proof,
    merkle_root,
    node_hash,
    present_slots,
    slot_places,
    slots_where,
    split,
)
from broker.errors import CommitmentError, TooManyItemsError
from broker.events import codec
from broker.events.schemas import SchemaVersion, registry
from tests.unit import event_samples as samples


def _full(record: str, payload: dict[str, Any]) -> tuple[SchemaVersion, dict[str, Any]]:
    version = registry().current(record)
    body = codec.encode_body(version, payload)
    return version, codec.decode_body(body, version, version)


def _referral() -> tuple[SchemaVersion, dict[str, Any]]:
    return _full("Referral", samples.referral())


def _case() -> tuple[SchemaVersion, dict[str, Any]]:
    return _full("CaseUpdate", samples.case_update())


def _disclose_all(opening: Opening) -> tuple[Entry, ...]:
    return make_proof(opening, lambda i: True, lambda i: False)


def _withholdable(version: SchemaVersion, payload: dict[str, Any]) -> list[int]:
    """Slots a view can withhold: nullable or string values (nulled or masked)."""
    out = []
    for p in present_slots(leaf_set(version), payload):
        try:
            p.encode(None)
        except (ValueError, TypeError, KeyError):
            if not isinstance(p.value, str):
                continue
        out.append(p.index)
    return out


def _view(version: SchemaVersion, payload: dict[str, Any], withheld: set[int]) -> dict[str, Any]:
    """``payload`` with the values at ``withheld`` slots nulled (or masked if required)."""
    out = copy.deepcopy(payload)
    for p in present_slots(leaf_set(version), payload):
        if p.index not in withheld:
            continue
        node: Any = out
        for _kind, key in p.steps[:-1]:
            node = node[key]
        try:
            p.encode(None)
            node[p.steps[-1][1]] = None
        except (ValueError, TypeError, KeyError):
            node[p.steps[-1][1]] = MASK
    return out


def test_a_full_disclosure_reproduces_the_root() -> None:
    version, payload = _referral()
    opening = commit(payload, version)
    again = check_proof(payload, version, _disclose_all(opening), {}, original=True)
    assert again.root == opening.root


def test_the_merkle_root_is_rfc9162s_for_every_size() -> None:
    def reference(leaves: list[bytes]) -> bytes:
        # RFC 9162 section 2.1.1, bottom-up: pair neighbours, carry an odd last one up.
        level = list(leaves)
        while len(level) > 1:
            nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
        return level[0]

    assert merkle_root([]) == hashlib.sha256(b"").digest()
    for n in range(1, 70):
        leaves = [hashlib.sha256(bytes([i])).digest() for i in range(n)]
        assert merkle_root(leaves) == reference(leaves)


def test_the_leaf_count_is_fixed_by_the_schema_whatever_the_payload_holds() -> None:
    version, one = _case()
    two = copy.deepcopy(one)
    two["victims"].append(copy.deepcopy(one["victims"][0]))
    assert commit(one, version).size == commit(two, version).size == leaf_set(version).size


def test_a_view_that_empties_an_array_has_the_same_proof_shape_whatever_it_held() -> None:
    version, one = _case()
    two = copy.deepcopy(one)
    two["victims"].append(copy.deepcopy(one["victims"][0]))
    shapes = []
    for payload in (one, two):
        opening = commit(payload, version)
        victims = {p.index for p in present_slots(leaf_set(version), payload)
                   if p.steps[0] == ("field", "victims")}  # fmt: skip
        proof = make_proof(opening, lambda i, v=victims: i not in v, lambda i: False)  # type: ignore[misc]
        shapes.append([e.size if isinstance(e, Withheld) else "salt" for e in proof])
    assert shapes[0] == shapes[1]


def test_a_payload_over_an_arrays_maximum_is_refused_naming_the_field() -> None:
    version, payload = _case()
    payload["victims"] = [copy.deepcopy(payload["victims"][0]) for _ in range(21)]
    with pytest.raises(TooManyItemsError, match=r"victims: 21 items, over the schema's maximum"):
        commit(payload, version)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_a_view_with_any_subset_of_fields_withheld_verifies(data: st.DataObject) -> None:
    version, payload = _case()
    opening = commit(payload, version)
    candidates = _withholdable(version, payload)
    withheld = set(data.draw(st.lists(st.sampled_from(candidates), unique=True)))
    view = _view(version, payload, withheld)
    proof = make_proof(opening, lambda i: i not in withheld, lambda i: False)
    assert check_proof(view, version, proof, {}, original=False).root == opening.root


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_tampering_with_any_disclosed_value_is_detected(data: st.DataObject) -> None:
    version, payload = _referral()
    opening = commit(payload, version)
    proof = _disclose_all(opening)
    slot = data.draw(st.sampled_from(present_slots(leaf_set(version), payload)))
    tampered = copy.deepcopy(payload)
    node: Any = tampered
    for _kind, key in slot.steps[:-1]:
        node = node[key]
    value = node[slot.steps[-1][1]]
    other = _another(value)
    node[slot.steps[-1][1]] = other
    with pytest.raises(CommitmentError):
        check_root(check_proof(tampered, version, proof, {}, original=True), opening.root, "x")


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_tampering_with_any_salt_or_hash_is_detected(data: st.DataObject) -> None:
    version, payload = _case()
    opening = commit(payload, version)
    withheld = set(_withholdable(version, payload)[::2])
    view = _view(version, payload, withheld)
    proof = list(make_proof(opening, lambda i: i not in withheld, lambda i: False))
    at = data.draw(st.integers(0, len(proof) - 1))
    bit = data.draw(st.integers(0, 8 * SALT_LEN - 1))
    entry = proof[at]
    if isinstance(entry, Withheld):
        flipped = bytearray(entry.hash)
        flipped[bit // 8] ^= 1 << (bit % 8)
        proof[at] = Withheld(entry.size, bytes(flipped))
    else:
        assert entry is not None
        flipped = bytearray(entry)
        flipped[bit // 8] ^= 1 << (bit % 8)
        proof[at] = bytes(flipped)
    with pytest.raises(CommitmentError):
        check_root(check_proof(view, version, proof, {}, original=False), opening.root, "x")


def _another(value: Any) -> Any:
    """A different value of the same kind (enums are strings: another string breaks them)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, int):
        return value + 1
    return "x" if value is None else None


def test_a_salt_of_the_wrong_length_is_refused_naming_the_field() -> None:
    version, payload = _referral()
    proof = list(_disclose_all(commit(payload, version)))
    first = next(i for i, e in enumerate(proof) if isinstance(e, bytes))
    proof[first] = bytes(SALT_LEN + 1)
    with pytest.raises(CommitmentError, match=r"referral_id: a salt of 17 bytes, not 16"):
        check_proof(payload, version, proof, {}, original=True)


def test_a_view_showing_a_value_it_claims_to_withhold_is_refused() -> None:
    version, payload = _referral()
    opening = commit(payload, version)
    surname = next(p.index for p in present_slots(leaf_set(version), payload)
                   if p.where == "victim.surname")  # fmt: skip
    proof = make_proof(opening, lambda i: i != surname, lambda i: False)
    with pytest.raises(CommitmentError, match=r"victim.surname: the proof withholds this value"):
        check_proof(payload, version, proof, {}, original=False)


def test_an_original_must_disclose_every_value() -> None:
    version, payload = _referral()
    opening = commit(payload, version)
    proof = make_proof(opening, lambda i: i != 0, lambda i: False)
    with pytest.raises(CommitmentError, match=r"referral_id: an original must disclose"):
        check_proof(payload, version, proof, {}, original=True)


def test_a_sealed_salt_stands_in_for_the_proofs() -> None:
    version, payload = _referral()
    opening = commit(payload, version)
    surname = next(p for p in present_slots(leaf_set(version), payload)
                   if p.where == "victim.surname")  # fmt: skip
    proof = make_proof(opening, lambda i: True, lambda i: i == surname.index)
    assert proof.count(None) == 1
    salt = opening.salts[surname.index]
    assert check_proof(payload, version, proof, {surname.path: salt}, original=True).root == (
        opening.root
    )
    with pytest.raises(CommitmentError, match=r"victim.surname: the proof says the salt is sealed"):
        check_proof(payload, version, proof, {}, original=True)


def test_every_value_encodes_as_fastavro_writes_it_under_its_slots_type() -> None:
    for version, payload in (_referral(), _case(), _full("Alert", samples.alert())):
        named: dict[str, Any] = {}
        _collect(version.schema, named)
        for p in present_slots(leaf_set(version), payload):
            node: Any = version.schema
            for kind, key in p.steps:
                node = _child(node, kind, key, named)
            node = _deref(node, named)
            if isinstance(node, list):
                node = [_deref(b, named) for b in node]
            buf = io.BytesIO()
            fastavro.schemaless_writer(buf, node, p.value)
            assert p.encode(p.value) == buf.getvalue(), p.where


def _child(node: Any, kind: str, key: str | int, named: dict[str, Any]) -> Any:
    node = _deref(node, named)
    if isinstance(node, list):
        node = next(_deref(b, named) for b in node if b != "null")
    if isinstance(node, dict) and isinstance(node.get("type"), dict | list):
        return _child(node["type"], kind, key, named)
    if kind == "index":
        return node["items"]
    return next(f["type"] for f in node["fields"] if f["name"] == key)


def _deref(node: Any, named: dict[str, Any]) -> Any:
    if isinstance(node, str) and node in named:
        return named[node]
    return node


def test_hashes_and_salts_have_their_stated_lengths() -> None:
    version, payload = _referral()
    opening = commit(payload, version)
    assert len(opening.root) == HASH_LEN
    assert {len(s) for s in opening.salts.values()} == {SALT_LEN}


def _collect(node: Any, named: dict[str, Any]) -> None:
    """Every named type defined in ``node``, by full name (as the expanded schema spells it)."""
    if isinstance(node, list):
        for b in node:
            _collect(b, named)
    elif isinstance(node, dict):
        if node.get("type") in ("record", "enum", "fixed"):
            named[node["name"]] = node
        for value in node.values():
            _collect(value, named)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_the_quick_walk_picks_the_slots_the_full_walk_picks(data: st.DataObject) -> None:
    version, payload = data.draw(st.sampled_from([_referral, _case]))()
    present = present_slots(leaf_set(version), payload)
    chosen = data.draw(st.sets(st.sampled_from([p.index for p in present])))
    values = {id(p.value) for p in present if p.index in chosen}
    # Pick by identity of the value object, so the two walks must agree on every place.
    picked = slots_where(leaf_set(version), payload, lambda v: id(v) in values)
    full = {p.index for p in present if id(p.value) in values}
    assert picked == full


def test_the_quick_walk_refuses_a_payload_over_an_arrays_maximum_naming_the_field() -> None:
    version, payload = _case()
    payload["victims"] = [copy.deepcopy(payload["victims"][0]) for _ in range(21)]
    with pytest.raises(TooManyItemsError, match=r"victims: 21 items, over the schema's maximum"):
        slots_where(leaf_set(version), payload, lambda v: True)


def _walked_proof(opening: Opening, shown: set[int], sealed: set[int]) -> list[Entry]:
    """The proof by walking the tree for every view (what make_proof did before #19)."""
    order = sorted(shown)
    out: list[Entry] = []

    def walk(lo: int, hi: int) -> None:
        at = bisect_left(order, lo)
        if at == len(order) or order[at] >= hi:
            out.append(Withheld(hi - lo, opening.nodes[(lo, hi)]))
        elif hi - lo == 1:
            out.append(None if lo in sealed else opening.salts[lo])
        else:
            k = split(hi - lo)
            walk(lo, lo + k)
            walk(lo + k, hi)

    walk(0, opening.size)
    return out


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_a_proof_has_the_entries_a_walk_of_the_tree_gives_for_any_disclosure(
    data: st.DataObject,
) -> None:
    version, payload = data.draw(st.sampled_from([_referral, _case]))()
    opening = commit(payload, version)
    slots = sorted(opening.salts)
    shown = data.draw(st.sets(st.sampled_from(slots)))
    sealed = data.draw(st.sets(st.sampled_from(slots)))
    proof = make_proof(opening, shown.__contains__, sealed.__contains__)
    assert list(proof) == _walked_proof(opening, shown, sealed & shown)


def test_a_proof_of_the_same_shape_carries_each_events_own_salts_and_hashes() -> None:
    version, payload = _referral()
    first, second = commit(payload, version), commit(payload, version)
    one = make_proof(first, lambda i: i % 3 != 0, lambda i: False)
    two = make_proof(second, lambda i: i % 3 != 0, lambda i: False)
    assert [type(e) for e in one] == [type(e) for e in two]
    assert one != two
    check_root(check_proof(payload, version, _disclose_all(second), {}, original=True),
               second.root, "second")  # fmt: skip


@pytest.mark.parametrize("make", [_referral, _case])
def test_every_slot_has_one_place_and_each_value_sits_at_its_slots_place(make: Any) -> None:
    version, payload = make()
    places = slot_places(leaf_set(version))
    assert sorted(places.values()) == list(range(leaf_set(version).size))
    for p in present_slots(leaf_set(version), payload):
        assert places[p.steps] == p.index


@pytest.mark.parametrize("n", [2, 3, 4, 5, 7, 8, 9, 212, 1023, 1024, 1025, 2**20 + 1])
def test_split_is_the_largest_power_of_two_below_the_count(n: int) -> None:
    k = split(n)
    assert k < n <= 2 * k
    assert k & (k - 1) == 0


@pytest.mark.parametrize("cut", [1, 2, 10])
def test_a_proof_with_entries_missing_at_its_end_is_refused(cut: int) -> None:
    version, payload = _referral()
    opening = commit(payload, version)
    proof = _disclose_all(opening)
    with pytest.raises(CommitmentError, match="proof: "):
        check_proof(payload, version, proof[:-cut], {}, original=True)


@pytest.mark.parametrize("extra", [b"\x00" * SALT_LEN, None, Withheld(1, b"\x00" * HASH_LEN)])
def test_a_proof_with_an_entry_past_its_end_is_refused(extra: Entry) -> None:
    version, payload = _referral()
    opening = commit(payload, version)
    proof = (*_disclose_all(opening), extra)
    with pytest.raises(CommitmentError, match="1 entries more than the leaf set needs"):
        check_proof(payload, version, proof, {}, original=True)
