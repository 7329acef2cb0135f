"""Concrete places in a payload, and their one injective byte encoding.

A concrete place is a sequence of steps from the payload's root: ``("field", name)`` into a
record (or a map: decoded Avro gives both as dicts) and ``("index", i)`` into an array. A
union adds no step. Sealed fields bind their place into the associated data
(docs/SEALING.md) and commitments hash it into each leaf (docs/EVENTS.md), both with
:func:`encode_steps`, so the two can never disagree about which place a value is at.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

Step = tuple[str, str | int]
"""One step: ``("field", name)`` or ``("index", i)``."""


def length_prefixed(data: bytes) -> bytes:
    """``LP(data)``: a 4-byte big-endian unsigned length, then ``data``."""
    return len(data).to_bytes(4, "big") + data


def encode_steps(steps: Sequence[Step]) -> bytes:
    """An injective byte encoding of a concrete place (map keys may hold any character).

    One ``LP(...)`` per step: ``LP("f:" + name)`` for a record field or map key,
    ``LP("i:" + index)`` (decimal, no leading zeros) for an array index. For
    ``victims[0].person.surname``: ``LP("f:victims") ‖ LP("i:0") ‖ LP("f:person") ‖
    LP("f:surname")``.
    """
    return _encoded(tuple(steps))


@lru_cache(maxsize=4096)
def _encoded(steps: tuple[Step, ...]) -> bytes:
    # The places of one schema recur in every event; map keys make the set open, so bounded.
    out = bytearray()
    for kind, value in steps:
        out += length_prefixed(f"{kind[0]}:{value}".encode())
    return bytes(out)


def display_path(steps: Sequence[Step]) -> str:
    """The place as people read it: ``victims[0].person.surname``."""
    text = ""
    for kind, value in steps:
        if kind == "index":
            text += f"[{value}]"
        else:
            text += f".{value}" if text else str(value)
    return text
