"""Salted hash commitments to every value of a payload, under one Merkle root.

Scheme ``msht-commit/v1`` (byte for byte, with test vectors, in docs/EVENTS.md,
"Commitments"):

Leaf set
    Fixed per payload schema version: one *slot* per scalar place the schema can hold, in
    schema order (record fields in declaration order, array items by index, each item's
    slots together). Every array has a declared maximum (the field's ``"msht.max_items"``,
    else :data:`DEFAULT_MAX_ITEMS`) and owns that many items' slots whatever it holds, so the
    number of leaves says nothing about how many items there were; a payload with more is
    refused (:class:`~broker.errors.TooManyItemsError`, naming the field). A union of
    ``null`` and a record adds no slot: its fields' slots are *absent* when it is null.
Leaf
    Of a value present in the payload: ``SHA-256(00 ‖ "msht-commit/v1" 00 ‖ LP(path) ‖ salt ‖
    value)`` — ``path`` is :func:`broker.events.paths.encode_steps` of the concrete place,
    ``salt`` 16 fresh random bytes, ``value`` the Avro binary encoding of the value under the
    slot's schema type.
Root
    RFC 9162 Merkle Tree Hash over the slots in order, nodes ``SHA-256(01 ‖ left ‖ right)``.
    A subtree whose slots are all absent has no leaves to hash: the publisher gives it 32
    fresh random bytes as its hash (which nobody can tell from a real subtree's hash).
Proof
    The tree walked depth first, left to right, one entry per *maximal* subtree without a
    disclosed value (``Withheld``: its size in slots and its hash — a withheld value, an
    absent slot, padding: all look alike) and one per disclosed value (its 16-byte salt, or
    ``None`` when the value is sealed and the salt travels inside the sealed value,
    docs/SEALING.md ``msht-sealed/v3``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import struct
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from hashlib import sha256
from typing import Any

from broker.errors import CommitmentError, ConfigError, EncodeError, TooManyItemsError
from broker.events.paths import Step, display_path, length_prefixed
from broker.events.proof import Entry as Entry
from broker.events.proof import Withheld as Withheld
from broker.events.schemas import SchemaVersion

SCHEME = "msht-commit/v1"
"""The commitment scheme this build writes and checks (the header's ``commitment.scheme``)."""

DOMAIN = SCHEME.encode("ascii") + b"\x00"
"""Domain separation inside every leaf: the 15 bytes ``msht-commit/v1`` then ``00``."""

SALT_LEN = 16
"""Bytes of a leaf's salt (128 random bits: no withheld value can be guessed from its hash)."""

HASH_LEN = 32
"""Bytes of a leaf or node hash (SHA-256)."""

DEFAULT_MAX_ITEMS = 10
"""The maximum of an array whose field declares no ``msht.max_items``."""

MAX_ITEMS_ATTRIBUTE = "msht.max_items"
"""The custom Avro field attribute that declares an array's maximum item count."""

MASK = "[withheld]"
"""What a masked string reads as (the policy views' mask; a withheld value may show it)."""

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_DATE = dt.date(1970, 1, 1)
_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


# --- Avro binary of one scalar value -------------------------------------------------------


def zigzag(n: int) -> bytes:
    """Avro's zig-zag varint of ``n`` (int and long)."""
    value = (n << 1) ^ (n >> 63)
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


Encoder = Callable[[Any], bytes]
Accepts = Callable[[Any], bool]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _millis(v: Any) -> bytes:
    if isinstance(v, dt.datetime):
        delta = v.astimezone(dt.UTC) - _EPOCH
        v = (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    return zigzag(int(v))


def _days(v: Any) -> bytes:
    if isinstance(v, dt.date):
        v = (v - _EPOCH_DATE).days
    return zigzag(int(v))


def _text(v: Any) -> bytes:
    data = str(v).encode("utf-8")
    return zigzag(len(data)) + data


def _scalar(node: Any) -> tuple[Encoder, Accepts]:
    """The Avro binary encoder of a resolved scalar schema node, and which values it takes."""
    kind, logical = (
        (node, None) if isinstance(node, str) else (node["type"], node.get("logicalType"))
    )
    if kind == "null":
        return (lambda v: b""), (lambda v: v is None)
    if kind == "boolean":
        return (lambda v: b"\x01" if v else b"\x00"), (lambda v: isinstance(v, bool))
    if kind in ("int", "long") and logical == "timestamp-millis":
        return _millis, (lambda v: isinstance(v, dt.datetime) or _is_int(v))
    if kind == "int" and logical == "date":
        return _days, (lambda v: isinstance(v, dt.date) or _is_int(v))
    if kind in ("int", "long"):
        return (lambda v: zigzag(int(v))), _is_int
    if kind in ("float", "double"):
        fmt = "<f" if kind == "float" else "<d"
        return (lambda v: struct.pack(fmt, v)), (lambda v: isinstance(v, float | int))
    if kind == "string":
        return _text, (lambda v: isinstance(v, str))
    if kind == "bytes":
        return (lambda v: zigzag(len(v)) + bytes(v)), (lambda v: isinstance(v, bytes))
    if kind == "enum":
        index = {s: i for i, s in enumerate(node["symbols"])}
        return (lambda v: zigzag(index[v])), (lambda v: isinstance(v, str) and v in index)
    if kind == "fixed":
        size = int(node["size"])
        return (lambda v: bytes(v)), (lambda v: isinstance(v, bytes) and len(v) == size)
    raise ConfigError(f"commitments: {kind!r} is not a scalar Avro type")


def _union(branches: Sequence[Any]) -> Encoder:
    parts = [(zigzag(i), *_scalar(b)) for i, b in enumerate(branches)]

    def encode(v: Any) -> bytes:
        for prefix, enc, accepts in parts:
            if accepts(v):
                return prefix + enc(v)
        raise ValueError(f"no branch of the union takes a {type(v).__name__}")

    return encode


# --- the leaf set of a schema version: a compiled template ---------------------------------


@dataclass(frozen=True)
class _Leaf:
    encode: Encoder
    size: int = 1


@dataclass(frozen=True)
class _Record:
    fields: tuple[tuple[str, bytes, int, Any], ...]
    """(name, LP("f:" + name), offset of its slots in the record's, node)."""
    size: int


@dataclass(frozen=True)
class _Optional:
    node: Any
    size: int


@dataclass(frozen=True)
class _Array:
    item: Any
    limit: int
    size: int


def _is_scalar(node: Any) -> bool:
    if isinstance(node, str):
        return node in _PRIMITIVES
    return node.get("type") in _PRIMITIVES or node.get("type") in ("enum", "fixed")


class _Compiler:
    def __init__(self) -> None:
        self.named: dict[str, Any] = {}

    def resolve(self, node: Any) -> Any:
        if isinstance(node, str) and node not in _PRIMITIVES:
            if node not in self.named:
                raise ConfigError(f"commitments: type {node} is used before it is defined")
            return self.named[node]
        if isinstance(node, dict):
            if node.get("type") in ("record", "enum", "fixed", "error"):
                self.named[str(node["name"])] = node
            if isinstance(node.get("type"), dict | list):
                return self.resolve(node["type"])
        return node

    def compile(self, node: Any, where: str, max_items: Any) -> Any:
        node = self.resolve(node)
        if isinstance(node, list):
            branches = [self.resolve(b) for b in node]
            if all(_is_scalar(b) for b in branches):
                return _Leaf(_union(branches))
            if len(branches) == 2 and "null" in branches:
                inner = self.compile(next(b for b in branches if b != "null"), where, max_items)
                return _Optional(inner, inner.size)
            raise ConfigError(f"commitments: {where}: a union of several non-scalar types")
        if _is_scalar(node):
            return _Leaf(_scalar(node)[0])
        kind = node["type"]
        if kind in ("record", "error"):
            fields = []
            offset = 0
            for f in node["fields"]:
                name = str(f["name"])
                child = self.compile(
                    f["type"], f"{where}.{name}".lstrip("."), f.get(MAX_ITEMS_ATTRIBUTE)
                )
                fields.append((name, length_prefixed(f"f:{name}".encode()), offset, child))
                offset += child.size
            return _Record(tuple(fields), offset)
        if kind == "array":
            limit = DEFAULT_MAX_ITEMS if max_items is None else int(max_items)
            item = self.compile(node["items"], f"{where}[]", None)
            return _Array(item, limit, limit * item.size)
        raise ConfigError(f"commitments: {where or 'the payload'}: a {kind} cannot be committed")


@dataclass(frozen=True)
class LeafSet:
    """The slots of one payload schema version (a compiled template; see the module doc)."""

    fingerprint: bytes
    size: int
    """How many slots: the leaf count of every commitment under this version."""
    root: Any = field(repr=False, compare=False)


_LEAF_SETS: dict[bytes, LeafSet] = {}


def leaf_set(version: SchemaVersion) -> LeafSet:
    """The leaf set of a payload schema version (compiled once per version)."""
    found = _LEAF_SETS.get(version.fingerprint)
    if found is None:
        root = _Compiler().compile(dict(version.schema), "", None)
        found = LeafSet(version.fingerprint, root.size, root)
        _LEAF_SETS[version.fingerprint] = found
    return found


class Present:
    """A slot that holds a value in a payload (a plain slotted class: a payload walk makes
    one per value, and a frozen dataclass was slow to build)."""

    __slots__ = ("encode", "index", "path", "steps", "value")

    def __init__(
        self, index: int, steps: tuple[Step, ...], path: bytes, value: Any, encode: Encoder
    ) -> None:
        self.index = index
        self.steps = steps
        self.path = path
        """``encode_steps(steps)``."""
        self.value = value
        self.encode = encode

    @property
    def where(self) -> str:
        """The place as people read it (``victims[0].person.surname``)."""
        return display_path(self.steps)


def present_slots(
    leaves: LeafSet, payload: Mapping[str, Any], error: type[Exception] = TooManyItemsError
) -> list[Present]:
    """Every slot that holds a value in ``payload``, in slot order.

    Raises ``error`` naming the field when an array holds more items than its maximum, or a
    value is not of the shape the schema gives its place.
    """
    out: list[Present] = []
    _visit(leaves.root, payload, 0, (), b"", out, error)
    return out


def _visit(
    node: Any,
    value: Any,
    base: int,
    steps: tuple[Step, ...],
    path: bytes,
    out: list[Present],
    error: type[Exception],
) -> None:
    if isinstance(node, _Leaf):
        out.append(Present(base, steps, path, value, node.encode))
    elif isinstance(node, _Optional):
        if value is not None:
            _visit(node.node, value, base, steps, path, out, error)
    elif isinstance(node, _Record):
        if not isinstance(value, dict) and not isinstance(value, Mapping):
            raise error(f"{display_path(steps) or 'the payload'}: not a record")
        for name, step, offset, child in node.fields:
            if name in value:
                _visit(child, value[name], base + offset, (*steps, ("field", name)), path + step,
                       out, error)  # fmt: skip
    elif isinstance(node, _Array):
        if not isinstance(value, list):
            raise error(f"{display_path(steps)}: not an array")
        if len(value) > node.limit:
            raise error(
                f"{display_path(steps)}: {len(value)} items, over the schema's maximum of "
                f"{node.limit} ({MAX_ITEMS_ATTRIBUTE}); the commitments' leaf set is fixed per "
                "schema version"
            )
        for i, item in enumerate(value):
            _visit(node.item, item, base + i * node.item.size, (*steps, ("index", i)),
                   path + length_prefixed(f"i:{i}".encode()), out, error)  # fmt: skip


def slot_places(leaves: LeafSet) -> Mapping[tuple[Step, ...], int]:
    """Every slot of the leaf set by its concrete place (``(("field", "victims"), ("index",
    0), …)``), present or not: a slot's place is fixed by the schema, so which slots a view
    plan withholds can be worked out once per plan, not per event."""
    found = _PLACES.get(leaves.fingerprint)
    if found is None:
        out: dict[tuple[Step, ...], int] = {}
        _every_slot(leaves.root, 0, (), out)
        found = _PLACES[leaves.fingerprint] = out
    return found


_PLACES: dict[bytes, dict[tuple[Step, ...], int]] = {}


def _every_slot(node: Any, base: int, steps: tuple[Step, ...], out: dict[Any, int]) -> None:
    if isinstance(node, _Leaf):
        out[steps] = base
    elif isinstance(node, _Optional):
        _every_slot(node.node, base, steps, out)
    elif isinstance(node, _Record):
        for name, _step, offset, child in node.fields:
            _every_slot(child, base + offset, (*steps, ("field", name)), out)
    elif isinstance(node, _Array):
        for i in range(node.limit):
            _every_slot(node.item, base + i * node.item.size, (*steps, ("index", i)), out)


class _MisfitError(Exception):
    """A value not of its place's shape, met by the quick walk (the full walk names it)."""


def slots_where(
    leaves: LeafSet, payload: Mapping[str, Any], pick: Callable[[Any], bool]
) -> set[int]:
    """The slots whose value in ``payload`` ``pick`` accepts: what
    ``{p.index for p in present_slots(leaves, payload) if pick(p.value)}`` gives, without
    building each value's place and path (which slots of a view are sealed is asked per
    view, and the places are not needed for it).

    Raises what :func:`present_slots` raises for a payload not of the schema's shape.
    """
    out: set[int] = set()
    try:
        _pick(leaves.root, payload, 0, pick, out)
    except _MisfitError:
        present_slots(leaves, payload)  # raises, naming the field
        raise AssertionError("the quick walk and the full walk disagree") from None
    return out


def _pick(node: Any, value: Any, base: int, pick: Callable[[Any], bool], out: set[int]) -> None:
    if isinstance(node, _Leaf):
        if pick(value):
            out.add(base)
    elif isinstance(node, _Optional):
        if value is not None:
            _pick(node.node, value, base, pick, out)
    elif isinstance(node, _Record):
        # A decoded payload is dicts: the exact check first (an ABC check is slow).
        if not isinstance(value, dict) and not isinstance(value, Mapping):
            raise _MisfitError
        for name, _step, offset, child in node.fields:
            if name in value:
                _pick(child, value[name], base + offset, pick, out)
    elif isinstance(node, _Array):
        if not isinstance(value, list) or len(value) > node.limit:
            raise _MisfitError
        size = node.item.size
        for i, item in enumerate(value):
            _pick(node.item, item, base + i * size, pick, out)


# --- hashing -------------------------------------------------------------------------------


_LEAF_HEAD = LEAF_PREFIX + DOMAIN
_END = object()
"""What a proof walk reads past the last entry."""


def leaf_hash(path: bytes, salt: bytes, value_bytes: bytes) -> bytes:
    """``SHA-256(00 ‖ DOMAIN ‖ LP(path) ‖ salt ‖ value_bytes)``."""
    return hashlib.sha256(
        LEAF_PREFIX + DOMAIN + length_prefixed(path) + salt + value_bytes
    ).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(01 ‖ left ‖ right)``."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def split(n: int) -> int:
    """RFC 9162's split of *n* > 1 slots: the largest power of two smaller than *n*."""
    return 1 << ((n - 1).bit_length() - 1)


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The RFC 9162 Merkle Tree Hash of leaf hashes already computed (``SHA-256("")`` for
    none)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = split(len(leaves))
    return node_hash(merkle_root(leaves[:k]), merkle_root(leaves[k:]))


# --- the publisher: commit -----------------------------------------------------------------


@dataclass(frozen=True)
class Opening:
    """What the holder of every value knows of one commitment: the root, every tree node
    it computed or was given (by slot range), and the salt of each value present."""

    root: bytes
    size: int
    nodes: Mapping[tuple[int, int], bytes] = field(repr=False)
    salts: Mapping[int, bytes] = field(repr=False)
    """Salt by slot index, for every value present."""
    paths: Mapping[bytes, int] = field(repr=False)
    """Slot index by path bytes, for every value present."""
    steps: Mapping[int, tuple[Step, ...]] = field(default_factory=dict, repr=False)
    """The place of every value present, by slot index."""

    def salt_at(self, path: bytes) -> bytes | None:
        """The salt of the value at ``path`` (bytes), if the payload has one there."""
        at = self.paths.get(path)
        return None if at is None else self.salts[at]


def commit(
    payload: Mapping[str, Any],
    version: SchemaVersion,
    *,
    random: Callable[[int], bytes] = os.urandom,
) -> Opening:
    """Commit to every value of ``payload`` (a ``version`` record) with fresh salts.

    Raises :class:`TooManyItemsError` naming an array over its maximum, and
    :class:`~broker.errors.EncodeError` naming a value that does not fit its slot's type.
    """
    leaves = leaf_set(version)
    return commit_present(leaves, present_slots(leaves, payload), random=random)


def commit_present(
    leaves: LeafSet,
    present: Sequence[Present],
    *,
    random: Callable[[int], bytes] = os.urandom,
) -> Opening:
    """:func:`commit` of the values ``present`` (:func:`present_slots` of the payload, in slot
    order), for a caller that walked the payload already."""
    fresh = random(SALT_LEN * len(present))
    hashes: list[bytes] = []
    salts: dict[int, bytes] = {}
    for n, p in enumerate(present):
        salt = fresh[n * SALT_LEN : (n + 1) * SALT_LEN]
        try:
            hashes.append(leaf_hash(p.path, salt, p.encode(p.value)))
        except (ValueError, TypeError, KeyError, struct.error) as exc:
            raise EncodeError(f"{p.where}: the value does not fit its schema type ({exc})") from exc
        salts[p.index] = salt
    indices = [p.index for p in present]
    nodes: dict[tuple[int, int], bytes] = {}
    stand_in = _StandIns(random)

    def mth(lo: int, hi: int, a: int, b: int) -> bytes:
        # The values in slots lo..hi-1 are present[a:b].
        if a == b:
            found = stand_in()  # no value under it: a random stand-in
        elif hi - lo == 1:
            found = hashes[a]
        else:
            k = split(hi - lo)
            mid = bisect_left(indices, lo + k, a, b)
            found = node_hash(mth(lo, lo + k, a, mid), mth(lo + k, hi, mid, b))
        nodes[(lo, hi)] = found
        return found

    root = mth(0, leaves.size, 0, len(present))
    return Opening(
        root,
        leaves.size,
        nodes,
        salts,
        {p.path: p.index for p in present},
        {p.index: p.steps for p in present},
    )


class _StandIns:
    """Random stand-in hashes for subtrees without a value, drawn 16 at a time (a referral
    has ~40; a system call each was a few per cent of committing). The bytes are the same
    stream as one draw per stand-in."""

    def __init__(self, random: Callable[[int], bytes]) -> None:
        self._random = random
        self._pool = b""
        self._at = 0

    def __call__(self) -> bytes:
        if self._at == len(self._pool):
            self._pool, self._at = self._random(HASH_LEN * 16), 0
        self._at += HASH_LEN
        return self._pool[self._at - HASH_LEN : self._at]


def make_proof(
    opening: Opening,
    disclosed: Callable[[int], bool],
    sealed: Callable[[int], bool],
) -> tuple[Entry, ...]:
    """The proof disclosing the values at the slots ``disclosed`` picks (only slots that hold
    a value): a :class:`Withheld` for every maximal subtree without one, ``None`` for a
    disclosed value whose salt is sealed inside it (``sealed``), its salt otherwise."""
    shown = inside = 0
    for i in opening.salts:
        if disclosed(i):
            shown |= 1 << i
            if sealed(i):
                inside |= 1 << i
    nodes, salts = opening.nodes, opening.salts
    return tuple(
        Withheld(hi - lo, nodes[(lo, hi)]) if kind == _WITHHELD else None if kind == _SEALED
        else salts[lo]
        for kind, lo, hi in _skeleton(opening.size, shown, inside)
    )  # fmt: skip


_WITHHELD, _SEALED, _SALT = 0, 1, 2


@lru_cache(maxsize=256)
def _skeleton(size: int, shown: int, inside: int) -> tuple[tuple[int, int, int], ...]:
    """The proof's entries as (kind, lo, hi) for the slots ``shown`` discloses (a bit per
    slot), ``inside`` those whose salt is sealed inside the value. It depends on nothing
    else, and events of one form with one view give the same masks: the tree is walked
    once per shape, not per view."""
    out: list[tuple[int, int, int]] = []

    def walk(lo: int, hi: int) -> None:
        if not (shown >> lo) & ((1 << (hi - lo)) - 1):
            out.append((_WITHHELD, lo, hi))
        elif hi - lo == 1:
            out.append((_SEALED if (inside >> lo) & 1 else _SALT, lo, hi))
        else:
            k = split(hi - lo)
            walk(lo, lo + k)
            walk(lo + k, hi)

    walk(0, size)
    return tuple(out)


# --- checking a proof ----------------------------------------------------------------------


def _shows_nothing(value: Any) -> bool:
    return value is None or value == MASK or value == [] or value == {}


def check_proof(
    payload: Mapping[str, Any],
    version: SchemaVersion,
    entries: Sequence[Entry],
    sealed_salts: Mapping[bytes, bytes],
    *,
    original: bool,
    unsalted: Mapping[bytes, str] | None = None,
) -> Opening:
    """Recompute the root from ``payload`` (sealed values already opened) and ``entries``.

    ``sealed_salts`` holds, by path bytes, the salt each opened sealed value carried;
    ``unsalted`` the sealed text of each opened value that carried none (sealed before it
    was committed to: the commitment covers that text, not what it opens to). With
    ``original`` (an ingress event, checked by the router) every value present must be
    disclosed. A view may withhold any value, and then must show it as null or masked, so
    every value a recipient reads is one the originator committed to. Returns the
    recomputed :class:`Opening` (compare its ``root`` with the signed one); raises
    :class:`CommitmentError` naming the field.
    """
    leaves = leaf_set(version)
    present = {p.index: p for p in present_slots(leaves, payload, CommitmentError)}
    order = sorted(present)
    paths = {p.path for p in present.values()}
    if any(path not in paths for path in sealed_salts):
        raise CommitmentError("proof: a sealed value at a place with no slot")
    nodes: dict[tuple[int, int], bytes] = {}
    salts: dict[int, bytes] = {}
    count = len(entries)
    # A sentinel past the end: the walk reads the next entry without a bounds check.
    items: list[Any] = [*entries, _END]
    at = 0

    def mth(lo: int, hi: int) -> bytes:
        nonlocal at
        entry = items[at]
        n = hi - lo
        if isinstance(entry, Withheld) and entry.size == n:
            at += 1
            if len(entry.hash) != HASH_LEN:
                raise CommitmentError(f"proof: a hash of {len(entry.hash)} bytes, not {HASH_LEN}")
            for i in order[bisect_left(order, lo) : bisect_left(order, hi)]:
                p = present[i]
                if original:
                    raise CommitmentError(
                        f"{p.where}: an original must disclose every value to the router"
                    )
                if p.path in sealed_salts or not _shows_nothing(p.value):
                    raise CommitmentError(
                        f"{p.where}: the proof withholds this value, but the payload shows one"
                    )
            found = bytes(entry.hash)
        elif n == 1:
            if at >= count:
                raise CommitmentError("proof: fewer entries than the leaf set needs")
            at += 1
            found = _disclosed(lo, entry)
        else:
            if isinstance(entry, Withheld) and entry.size > n:
                raise CommitmentError("proof: a withheld subtree that does not fit the tree")
            k = 1 << ((n - 1).bit_length() - 1)  # split(n), inline: ~100 nodes a proof
            found = sha256(NODE_PREFIX + mth(lo, lo + k) + mth(lo + k, hi)).digest()
        nodes[(lo, hi)] = found
        return found

    def _disclosed(index: int, entry: Entry) -> bytes:
        p = present.get(index)
        if isinstance(entry, Withheld):
            raise CommitmentError("proof: a withheld subtree that does not fit the tree")
        if p is None:
            raise CommitmentError(
                f"proof: slot {index} is opened, but the payload has no value there"
            )
        sealed_salt = sealed_salts.get(p.path)
        if entry is None:
            if sealed_salt is None:
                raise CommitmentError(
                    f"{p.where}: the proof says the salt is sealed inside the value, but it is not"
                )
            salt = sealed_salt
        else:
            if sealed_salt is not None:
                raise CommitmentError(f"{p.where}: a salt both sealed inside and in the proof")
            salt = bytes(entry)
        if len(salt) != SALT_LEN:
            raise CommitmentError(f"{p.where}: a salt of {len(salt)} bytes, not {SALT_LEN}")
        value = p.value if unsalted is None else unsalted.get(p.path, p.value)
        try:
            value_bytes = p.encode(value)
        except (ValueError, TypeError, KeyError, struct.error) as exc:
            raise CommitmentError(f"{p.where}: the value does not fit its type ({exc})") from exc
        salts[index] = salt
        path = p.path
        return sha256(
            _LEAF_HEAD + len(path).to_bytes(4, "big") + path + salt + value_bytes
        ).digest()

    root = mth(0, leaves.size)
    if at != len(entries):
        raise CommitmentError(f"proof: {len(entries) - at} entries more than the leaf set needs")
    return Opening(
        root,
        leaves.size,
        nodes,
        salts,
        {p.path: i for i, p in present.items()},
        {i: p.steps for i, p in present.items()},
    )


def check_root(opening: Opening, signed_root: bytes, what: str) -> None:
    """Raise :class:`CommitmentError` unless the recomputed root is the signed one."""
    if opening.root != signed_root:
        raise CommitmentError(
            f"{what}: the disclosed values, salts and hashes do not reproduce the signed "
            "commitment root (a value, salt or hash was altered)"
        )
