"""The commitment proof an envelope carries (Envelope v3), as values: no hashing here.

The scheme itself (leaves, root, how a proof is made and checked) is
:mod:`broker.crypto.commitments`; docs/EVENTS.md, "Commitments", gives the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Withheld:
    """A proof entry standing for ``size`` consecutive slots by their subtree's hash."""

    size: int
    hash: bytes = field(repr=False)


Entry = bytes | Withheld | None
"""One proof entry: a disclosed value's salt (16 bytes), ``None`` (the salt is sealed inside
the value) or :class:`Withheld`."""


@dataclass(frozen=True)
class Commitment:
    """The header's commitment: the scheme, the Merkle root and the leaf count."""

    scheme: str
    root: bytes
    leaves: int
