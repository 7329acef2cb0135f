"""Which payload fields are sealed, driven by the schemas' sensitivity tags.

Every field a schema tags with ``msht.sensitivity`` (identity, contact, narrative, staff)
travels sealed: from the publisher to the router (sealed to the router's X25519 key) and
from the router to each recipient (sealed to that recipient's key). Kafka, its disks and
every other reader see only ciphertext. Only strings can be sealed in place without
breaking the Avro schema, so a tagged array or map of strings is sealed item by item and a
tagged record is covered by its own tagged string fields.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from broker.crypto.sealing import SealScope, Step, open_fields, open_fields_salted, seal_fields
from broker.events.envelope import Header
from broker.events.fields import FieldInfo
from broker.events.schemas import registry
from broker.types import PartnerId


def scope_of(header: Header) -> SealScope:
    """The sealing scope of the event ``header`` describes: its source agency, id and type.

    A view keeps its original's header fields, so the router's view and the original share
    one scope; what differs between them is the recipient.
    """
    return SealScope(header.source, header.event_id, header.event_type)


def protected_paths(fields: Iterable[FieldInfo]) -> tuple[str, ...]:
    """Seal paths (``broker.crypto.sealing`` syntax) of every tagged, sealable field."""
    paths: list[str] = []
    for f in fields:
        if not f.tags:
            continue
        if f.kind == "string":
            paths.append(f.path)
        elif f.kind == "array" and f.item_kind == "string":
            paths.append(f.path + "[]")
        elif f.kind == "map" and f.item_kind == "string":
            paths.append(f.path + "{}")
    return tuple(paths)


@cache
def record_protected_paths(record_name: str) -> tuple[str, ...]:
    """:func:`protected_paths` of a payload record (short or full name), computed once."""
    return protected_paths(registry().fields(record_name))


def seal_protected(
    payload: Mapping[str, Any],
    record_name: str,
    scope: SealScope,
    recipient: PartnerId,
    public_key: X25519PublicKey,
    extra_paths: Sequence[str] = (),
    *,
    in_place: bool = False,
    salts: Callable[[Sequence[Step]], bytes | None] | None = None,
) -> dict[str, Any]:
    """``payload`` with every tagged field and ``extra_paths`` sealed to ``recipient``.

    A copy, unless ``in_place`` (for a dict the caller owns and will not use in clear).
    ``salts`` gives each value's commitment salt, sealed inside it.
    """
    paths = (*record_protected_paths(record_name), *extra_paths)
    return seal_fields(payload, paths, scope, recipient, public_key, in_place=in_place, salts=salts)


def open_protected(
    payload: Mapping[str, Any],
    scope: SealScope,
    recipient: PartnerId,
    private_keys: Sequence[X25519PrivateKey],
) -> dict[str, Any]:
    """A copy of ``payload`` (of the event ``scope``) with every field sealed to ``recipient``
    opened.

    Raises :class:`~broker.errors.SealingError` naming the field when one cannot be opened.
    """
    return open_fields(payload, scope, recipient, list(private_keys))


def open_protected_salted(
    payload: Mapping[str, Any],
    scope: SealScope,
    recipient: PartnerId,
    private_keys: Sequence[X25519PrivateKey],
) -> tuple[dict[str, Any], dict[bytes, bytes], dict[bytes, str]]:
    """:func:`open_protected`, the commitment salt each opened value carried and the sealed
    text of each that carried none (see :func:`broker.crypto.sealing.open_fields_salted`)."""
    return open_fields_salted(payload, scope, recipient, list(private_keys))
