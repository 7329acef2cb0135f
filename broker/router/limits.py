"""The bounds the router enforces on every ingress record, and on what it writes about one.

A publisher is a partner, not a trusted insider: whatever one record holds, the router must
spend a bounded amount of memory and CPU on it, write a bounded amount about it, and move on.
Each input bound has a stable name; an input over one is quarantined with ``msht-reason:
over-limit`` and ``msht-limit: <name>``, and the error text says the measured value and the
bound. The table in docs/ROUTER.md lists them with the reasoning behind each default.

Input bounds (:class:`InputLimits`, checked by :func:`check_record`, :func:`check_envelope`
and :func:`check_payload`, in that order, cheapest first):

``record-bytes``         key + value of the Kafka record
``signatures``           signatures on one ingress event (an original carries its source's)
``key-id-chars``         a signature's key id
``header-string-chars``  any other string in the header or a signature (ids, subject, markings)
``string-chars``         any string in the payload (a sealed narrative is the longest)
``array-items``          items of any array (or members of a record), header or payload
``nesting-depth``        records, arrays and maps inside one another in the payload
``sealed-fields``        sealed values the router must open (each costs an X25519 agreement)

Output bounds (module constants) keep every record the router produces far below Kafka's
1 MiB default request size, so that no input can make a produce fail.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from broker.crypto.sealing import SEALED_MARK
from broker.events.envelope import Envelope, header_to_dict

OVER_LIMIT = "over-limit"
"""The ``msht-reason`` of an input over one of the :class:`InputLimits`."""

UNWRITABLE = "unwritable"
"""The ``msht-reason`` of an input whose outputs could not be written even bounded: it is
audited by digest and passed, so it cannot hold its partition."""

QUARANTINE_PREFIX_BYTES = 16 * 1024
"""Of an input over ``record-bytes``, the quarantine topic keeps only this many leading bytes
(with the SHA-256 and size of the whole in headers): the copy must fit where the input did not."""

ERROR_TEXT_CHARS = 1_000
"""``msht-error`` and every other text header the router writes is cut to this many
characters (an error may quote an attacker-chosen key id or path)."""

AUDIT_STRING_CHARS = 1_024
"""An event id, source or subject longer than this is not copied into an audit or
quarantine record (the input's digest stands in for it)."""

MAX_OUTPUT_BYTES = 1_000_000
"""Key + value + headers of any one record the router produces. Kafka's producer refuses a
request over ``max_request_size`` (1,048,576 by default) and a refused record would abort the
partition's transaction on every retry; an input whose outputs exceed this is audited by
digest instead (:data:`UNWRITABLE`)."""


@dataclass(frozen=True)
class InputLimits:
    """The bounds on one ingress record (defaults: docs/ROUTER.md explains each)."""

    record_bytes: int = 512 * 1024
    """Key + value. A real referral is a few KiB; a 15,000-character narrative sealed is
    under 100 KiB. Half a MiB leaves the quarantine copy and audit record room under 1 MiB."""
    signatures: int = 2
    """An ingress event is an original: its signatures are its source's own — one, or two
    while the source rolls its signing key over. Countersignatures belong to views."""
    key_id_chars: int = 64
    """Key ids are ``<algorithm>:<32 hex>`` (40 characters for Ed25519)."""
    header_string_chars: int = 1_024
    """Event id, type, source, subject, schema name, markings (SIENA H3 free text included),
    signer and algorithm."""
    string_chars: int = 131_072
    """Any payload string: a 15,000-character narrative is at most 60 KB of UTF-8, about
    80,000 characters once sealed (padded, encrypted, base64url)."""
    array_items: int = 1_000
    """Items of one array, or members of one record or map, in the header or the payload.
    The richest real list is ten towns or countries, or a case's charges; the widest
    record has about 35 fields."""
    nesting_depth: int = 16
    """Records, arrays and maps inside one another in the payload (the schemas nest five
    deep today)."""
    sealed_fields: int = 256
    """Sealed values the router opens for one event: a referral has about ten per person.
    Each costs one X25519 agreement and one AEAD opening (about 0.1 ms)."""


DEFAULT_LIMITS = InputLimits()
"""The bounds :class:`~broker.router.route.RouteConfig` uses unless told otherwise."""


@dataclass(frozen=True)
class Breach:
    """One input bound exceeded: its stable ``name`` (``msht-limit``) and what was found."""

    name: str
    error: str


def _over(name: str, what: str, found: int, bound: int) -> Breach:
    return Breach(name, f"limit {name}: {what} is {found}, over the bound of {bound}")


def check_record(limits: InputLimits, key: bytes | None, value: bytes) -> Breach | None:
    """The ``record-bytes`` bound, before a byte of the record is decoded."""
    size = len(key or b"") + len(value)
    if size > limits.record_bytes:
        return _over("record-bytes", "the record (key + value, bytes)", size, limits.record_bytes)
    return None


def check_envelope(limits: InputLimits, envelope: Envelope) -> Breach | None:
    """Signature count, key ids, and every header and signature string and array."""
    count = len(envelope.signatures)
    if count > limits.signatures:
        return _over("signatures", "the number of signatures", count, limits.signatures)
    for index, sig in enumerate(envelope.signatures):
        if len(sig.key_id) > limits.key_id_chars:
            what = f"signature {index}'s key id (characters)"
            return _over("key-id-chars", what, len(sig.key_id), limits.key_id_chars)
        for name, text in (("signer", sig.signer), ("algorithm", sig.algorithm)):
            if len(text) > limits.header_string_chars:
                what = f"signature {index}'s {name} (characters)"
                return _over("header-string-chars", what, len(text), limits.header_string_chars)
    return _check_header(limits, header_to_dict(envelope.header), "header")


def _check_header(limits: InputLimits, node: Any, path: str) -> Breach | None:
    # The header's shape is fixed by its schema (markings, provenance): a plain walk.
    if isinstance(node, str):
        if len(node) > limits.header_string_chars:
            what = f"{path} (characters)"
            return _over("header-string-chars", what, len(node), limits.header_string_chars)
    elif isinstance(node, Mapping):
        if len(node) > limits.array_items:
            return _over("array-items", f"{path} (members)", len(node), limits.array_items)
        for key, item in node.items():
            found = _check_header(limits, item, f"{path}.{key}")
            if found:
                return found
    elif isinstance(node, list | tuple):
        if len(node) > limits.array_items:
            return _over("array-items", f"{path} (items)", len(node), limits.array_items)
        for i, item in enumerate(node):
            found = _check_header(limits, item, f"{path}[{i}]")
            if found:
                return found
    return None


def check_payload(limits: InputLimits, payload: Mapping[str, Any]) -> Breach | None:
    """String lengths, array and map sizes, nesting depth and the number of sealed values,
    in one pass over the decoded payload (before any sealed value is opened)."""
    sealed = 0
    # Iterative, so that no input's depth can reach Python's recursion limit. A node's path
    # is kept as (parent's entry, step) and spelled out only for a breach: most nodes are
    # strings within bounds, and formatting a path for each was most of this check's cost.
    stack: list[tuple[Any, Any, int]] = [(payload, None, 0)]
    while stack:
        node, where, depth = stack.pop()
        if isinstance(node, str):
            if len(node) > limits.string_chars:
                what = f"{_path(where)} (characters)"
                return _over("string-chars", what, len(node), limits.string_chars)
            if node.startswith(SEALED_MARK):
                sealed += 1
                if sealed > limits.sealed_fields:
                    what = "the number of sealed values"
                    return _over("sealed-fields", what, sealed, limits.sealed_fields)
            continue
        if isinstance(node, Mapping | list):
            if depth + 1 > limits.nesting_depth:
                what = f"{_path(where)} (nesting depth)"
                return _over("nesting-depth", what, depth + 1, limits.nesting_depth)
            if len(node) > limits.array_items:
                kind = "items" if isinstance(node, list) else "members"
                what = f"{_path(where)} ({kind})"
                return _over("array-items", what, len(node), limits.array_items)
            if isinstance(node, Mapping):
                stack.extend((v, (where, f".{k}"), depth + 1) for k, v in node.items())
            else:
                stack.extend((v, (where, i), depth + 1) for i, v in enumerate(node))
    return None


def _path(where: Any) -> str:
    """``payload.victims[0].name`` from the chain of (parent, step) :func:`check_payload` kept."""
    steps: list[str] = []
    while where is not None:
        where, step = where
        steps.append(f"[{step}]" if isinstance(step, int) else step)
    return "payload" + "".join(reversed(steps))


def nesting_depth(value: Any) -> int:
    """Records, arrays and maps inside one another in ``value`` (0 for a scalar)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, Mapping | list):
            deepest = max(deepest, depth + 1)
            items = node.values() if isinstance(node, Mapping) else node
            stack.extend((item, depth + 1) for item in items)
    return deepest


def clip(text: str, limit: int = ERROR_TEXT_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying so when it was cut."""
    if len(text) <= limit:
        return text
    marker = f"… [{len(text) - limit} characters cut]"
    return text[: max(limit - len(marker), 0)] + marker


def input_digest(value: bytes) -> str:
    """SHA-256 (hex) of an input record's value: how an input without a usable id is named."""
    return hashlib.sha256(value).hexdigest()
