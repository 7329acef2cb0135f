"""The event envelope as frozen dataclasses, and its Avro encoding.

An encoded event is the ``Envelope`` record in single-object encoding: ``C3 01``, the
Envelope schema's fingerprint, then the Avro body (header, payload bytes, signatures). The
payload bytes are the payload record's Avro body; ``header.payload_schema`` names its
writer schema by fingerprint. Signing is in :mod:`broker.crypto.signing`; this module only builds,
encodes and decodes.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from broker.errors import (
    EncodeError,
    EventTypeMismatchError,
    MalformedBodyError,
    UnknownFormatError,
    UnknownSchemaError,
)
from broker.events import codec
from broker.events.proof import Commitment, Entry, Withheld
from broker.events.schemas import (
    EVENT_TYPES,
    NAMESPACE,
    SchemaRegistry,
    SchemaVersion,
    payload_record_for,
    registry,
)
from broker.types import AgencyId, EventId, KeyId, Subject

ENVELOPE_RECORD = f"{NAMESPACE}.Envelope"
HEADER_RECORD = f"{NAMESPACE}.Header"
SIGNATURE_RECORD = f"{NAMESPACE}.Signature"
SIGNATURES_FIELD = "signatures"
FORMAT_VERSION = 1
"""The one envelope format this build writes and reads; any other is refused."""


def check_event_type(event_type: str, payload_record: str) -> None:
    """Raise :class:`EventTypeMismatchError` unless ``event_type`` is known and carries
    ``payload_record`` (a full name) according to :data:`broker.events.schemas.EVENT_TYPES`."""
    try:
        expected = payload_record_for(event_type)
    except UnknownSchemaError as exc:
        raise EventTypeMismatchError(f"header.event_type: {exc}") from exc
    if payload_record != expected:
        raise EventTypeMismatchError(
            f"header.event_type: {event_type} carries {expected}, "
            f"but the payload is {payload_record}"
        )


@dataclass(frozen=True)
class Grading:
    """Police 3x5x2 grading: source SOURCE_1..3, intelligence A..E, handling P or C."""

    source: str
    intelligence: str
    handling: str


@dataclass(frozen=True)
class Evaluation:
    """SIENA evaluation: source A, B, C or X; information INFO_1..INFO_4."""

    source: str
    information: str


@dataclass(frozen=True)
class Markings:
    """Classification and handling markings; symbols are the Avro enum symbols."""

    classification: str
    tlp: str
    siena_handling: str | None = None
    siena_restrictions: str | None = None
    grading: Grading | None = None
    evaluation: Evaluation | None = None
    intended_recipients: tuple[str, ...] = ()
    origin_country: str | None = None
    origin_authorised_recipients: tuple[str, ...] = ()


@dataclass(frozen=True)
class Signature:
    """One signature: who signed, with which key, when, and the 64 signature bytes."""

    signer: AgencyId
    key_id: KeyId
    algorithm: str
    signed_at: datetime
    signature: bytes = field(repr=False)


@dataclass(frozen=True)
class Provenance:
    """On a recipient's view: the original's digest and signatures, and who the view is for."""

    original_digest: bytes
    original_signatures: tuple[Signature, ...]
    recipient: str
    view: str | None = None
    rule: str | None = None
    """The policy rule that granted the delivery."""
    agreement: str | None = None
    """The information-sharing agreement the recipient receives under."""
    purposes: tuple[str, ...] = ()
    lawful_basis: str | None = None
    """What the disclosure rests on (``law_enforcement``: DPA 2018 Part 3; ``consent`` ...)."""
    transfer_basis: str | None = None
    """For a recipient abroad: the DPA 2018 ss.73-76 basis of the transfer."""
    onward_sharing: str | None = None
    """The agreement's condition on sharing further: it travels with the data."""
    retention: str | None = None
    withheld: tuple[str, ...] = ()
    """One plain sentence per thing a guard withheld from this recipient, and why."""


@dataclass(frozen=True)
class Header:
    """What an event is, where it came from and how to handle it. Every signature covers it."""

    event_id: EventId
    event_type: str
    source: AgencyId
    subject: Subject
    occurred_at: datetime
    published_at: datetime
    markings: Markings
    payload_schema: bytes
    payload_schema_name: str
    format_version: int = FORMAT_VERSION
    provenance: Provenance | None = None
    commitment: Commitment | None = None
    """The originator's commitment root over every payload value (Header v3, docs/EVENTS.md);
    ``None`` on an event written before commitments (Header v1/v2)."""


@dataclass(frozen=True)
class Envelope:
    """A self-contained event: header, payload bytes (Avro body), signatures in order."""

    header: Header
    payload: bytes = field(repr=False)
    signatures: tuple[Signature, ...] = ()
    proof: tuple[Entry, ...] | None = field(default=None, repr=False)
    """With a committed header (Envelope v3): what recomputes its root from this payload."""


# --- dict conversion (the Avro record shapes) -----------------------------------------------


def _millis(when: datetime, name: str) -> datetime:
    if when.tzinfo is None:
        raise EncodeError(f"header.{name}: datetime must be timezone-aware")
    # Avro timestamp-millis keeps whole milliseconds; truncate so a round trip is exact.
    when = when.astimezone(UTC)
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


def markings_from_dict(data: Mapping[str, Any]) -> Markings:
    """:class:`Markings` from the Avro record shape (a dict)."""
    grading = data.get("grading")
    evaluation = data.get("evaluation")
    return Markings(
        classification=str(data.get("classification")),
        tlp=str(data.get("tlp")),
        siena_handling=data.get("siena_handling"),
        siena_restrictions=data.get("siena_restrictions"),
        grading=Grading(**grading) if isinstance(grading, Mapping) else None,
        evaluation=Evaluation(**evaluation) if isinstance(evaluation, Mapping) else None,
        intended_recipients=tuple(data.get("intended_recipients") or ()),
        origin_country=data.get("origin_country"),
        origin_authorised_recipients=tuple(data.get("origin_authorised_recipients") or ()),
    )


def markings_to_dict(m: Markings) -> dict[str, Any]:
    """The Avro record shape of :class:`Markings`."""
    return {
        "classification": m.classification,
        "tlp": m.tlp,
        "siena_handling": m.siena_handling,
        "siena_restrictions": m.siena_restrictions,
        "grading": None
        if m.grading is None
        else {
            "source": m.grading.source,
            "intelligence": m.grading.intelligence,
            "handling": m.grading.handling,
        },
        "evaluation": None
        if m.evaluation is None
        else {"source": m.evaluation.source, "information": m.evaluation.information},
        "intended_recipients": list(m.intended_recipients),
        "origin_country": m.origin_country,
        "origin_authorised_recipients": list(m.origin_authorised_recipients),
    }


def signature_to_dict(s: Signature) -> dict[str, Any]:
    """The Avro record shape of :class:`Signature`."""
    return {
        "signer": s.signer,
        "key_id": s.key_id,
        "algorithm": s.algorithm,
        "signed_at": s.signed_at,
        "signature": s.signature,
    }


def signature_from_dict(d: Mapping[str, Any]) -> Signature:
    """:class:`Signature` from the Avro record shape."""
    return Signature(
        signer=AgencyId(d["signer"]),
        key_id=KeyId(d["key_id"]),
        algorithm=str(d["algorithm"]),
        signed_at=d["signed_at"],
        signature=bytes(d["signature"]),
    )


def header_to_dict(h: Header) -> dict[str, Any]:
    """The Avro record shape of :class:`Header` (with ``commitment`` only when it has one:
    a header without is written as Header v2)."""
    p = h.provenance
    out = _header_dict(h, p)
    if h.commitment is not None:
        c = h.commitment
        out["commitment"] = {"scheme": c.scheme, "root": c.root, "leaves": c.leaves}
    return out


def _header_dict(h: Header, p: Provenance | None) -> dict[str, Any]:
    return {
        "format_version": h.format_version,
        "event_id": h.event_id,
        "event_type": h.event_type,
        "source": h.source,
        "subject": h.subject,
        "occurred_at": h.occurred_at,
        "published_at": h.published_at,
        "markings": markings_to_dict(h.markings),
        "payload_schema": h.payload_schema,
        "payload_schema_name": h.payload_schema_name,
        "provenance": None
        if p is None
        else {
            "original_digest": p.original_digest,
            "original_signatures": [signature_to_dict(s) for s in p.original_signatures],
            "recipient": p.recipient,
            "view": p.view,
            "rule": p.rule,
            "agreement": p.agreement,
            "purposes": list(p.purposes),
            "lawful_basis": p.lawful_basis,
            "transfer_basis": p.transfer_basis,
            "onward_sharing": p.onward_sharing,
            "retention": p.retention,
            "withheld": list(p.withheld),
        },
    }


def header_from_dict(d: Mapping[str, Any]) -> Header:
    """:class:`Header` from the Avro record shape."""
    p = d.get("provenance")
    return Header(
        event_id=EventId(d["event_id"]),
        event_type=str(d["event_type"]),
        source=AgencyId(d["source"]),
        subject=Subject(d["subject"]),
        occurred_at=d["occurred_at"],
        published_at=d["published_at"],
        markings=markings_from_dict(d["markings"]),
        payload_schema=bytes(d["payload_schema"]),
        payload_schema_name=str(d["payload_schema_name"]),
        format_version=int(d["format_version"]),
        provenance=None
        if p is None
        else Provenance(
            original_digest=bytes(p["original_digest"]),
            original_signatures=tuple(signature_from_dict(s) for s in p["original_signatures"]),
            recipient=str(p["recipient"]),
            view=p.get("view"),
            rule=p.get("rule"),
            agreement=p.get("agreement"),
            purposes=tuple(str(x) for x in p.get("purposes") or ()),
            lawful_basis=p.get("lawful_basis"),
            transfer_basis=p.get("transfer_basis"),
            onward_sharing=p.get("onward_sharing"),
            retention=p.get("retention"),
            withheld=tuple(str(x) for x in p.get("withheld") or ()),
        ),
        commitment=_commitment_from_dict(d.get("commitment")),
    )


def _commitment_from_dict(c: Mapping[str, Any] | None) -> Commitment | None:
    if c is None:
        return None
    return Commitment(scheme=str(c["scheme"]), root=bytes(c["root"]), leaves=int(c["leaves"]))


def proof_to_list(proof: Sequence[Entry]) -> list[Any]:
    """The Avro shape of a proof's entries (``None``, salt bytes, or a WithheldSubtree)."""
    return [{"size": e.size, "hash": e.hash} if isinstance(e, Withheld) else e for e in proof]


def proof_from_list(entries: Sequence[Any]) -> tuple[Entry, ...]:
    """A proof's entries from their Avro shape."""
    return tuple(
        # Salts and nulls first: the Mapping check (an ABC's, slow) only for the rest.
        None
        if e is None
        else bytes(e)
        if isinstance(e, bytes)
        else Withheld(int(e["size"]), bytes(e["hash"]))
        if isinstance(e, Mapping)
        else bytes(e)
        for e in entries
    )


# --- building and encoding ------------------------------------------------------------------


def build_envelope(
    *,
    event_type: str,
    source: str,
    subject: str,
    markings: Markings | Mapping[str, Any],
    payload: Mapping[str, Any],
    occurred_at: datetime,
    published_at: datetime | None = None,
    event_id: str | None = None,
    payload_record: str | None = None,
    provenance: Provenance | None = None,
    reg: SchemaRegistry | None = None,
    check: bool = True,
    commitment: Commitment | None = None,
    proof: Sequence[Entry] | None = None,
    writer: SchemaVersion | None = None,
) -> Envelope:
    """An unsigned envelope; the payload is encoded strictly with its newest schema version
    (or ``writer``, a version of the same record: a view keeps its original's, since the
    originator's commitments are over that version's leaf set).

    ``check=False`` skips validating the payload and header (see
    :func:`broker.events.codec.encode_body`): only for parts decoded from Avro and changed in
    schema-preserving ways (a recipient's view of a verified event).

    ``payload_record`` defaults to the record the event type carries (see
    :data:`broker.events.schemas.EVENT_TYPES`) and must be that record when given; ``event_id``
    defaults to a random UUID and ``published_at`` to now. Raises :class:`EncodeError` naming
    the field that does not fit.
    """
    r = reg or registry()
    if event_type not in EVENT_TYPES:
        raise EncodeError(f"header.event_type: {event_type!r} is not a known event type")
    schema = writer or r.current(payload_record or payload_record_for(event_type))
    try:
        check_event_type(event_type, schema.name)
    except EventTypeMismatchError as exc:
        raise EncodeError(str(exc)) from exc
    body = codec.encode_body(schema, payload, reg=r, check=check)
    m = markings if isinstance(markings, Markings) else markings_from_dict(markings)
    header = Header(
        event_id=EventId(event_id or str(uuid.uuid4())),
        event_type=event_type,
        source=AgencyId(source),
        subject=Subject(subject),
        occurred_at=_millis(occurred_at, "occurred_at"),
        published_at=_millis(published_at or datetime.now(UTC), "published_at"),
        markings=m,
        payload_schema=schema.fingerprint,
        payload_schema_name=schema.name,
        provenance=provenance,
        commitment=commitment,
    )
    if check:
        # Validate the header now so a bad marking fails here, not at signing time.
        header_bytes(header, reg=r)
    if (commitment is None) != (proof is None):
        raise EncodeError("envelope: a commitment and its proof go together")
    return Envelope(header=header, payload=body, proof=None if proof is None else tuple(proof))


def header_bytes(header: Header, *, reg: SchemaRegistry | None = None, check: bool = True) -> bytes:
    """The header as Avro binary under the current ``Header`` version: the bytes every
    signature covers.

    An original (no provenance) has the same bytes under every version, since a version
    only adds fields to the provenance; a recipient's view is signed under Header v2, whose
    provenance carries the delivery's rule, agreement, lawful basis, conditions and what
    was withheld (docs/EVENTS.md). ``check=False`` skips validation (a decoded header, or
    one :func:`build_envelope` checked).
    """
    r = reg or registry()
    datum = header_to_dict(header) if check else _named_unions(header_to_dict(header))
    return codec.encode_body(_header_version(header, r), datum, reg=r, check=check)


_UNION_RECORDS = (
    ("provenance", "org.msht.events.Provenance"),
    ("commitment", "org.msht.events.Commitment"),
)
_MARKING_RECORDS = (
    ("grading", "org.msht.events.Grading"),
    ("evaluation", "org.msht.events.Evaluation"),
)


def _named_unions(datum: dict[str, Any]) -> dict[str, Any]:
    """``datum`` with each record in a null-or-record union named (fastavro's tuple
    notation): the same bytes, without fastavro trying each branch against the record —
    a third of encoding a view's header. Only for unvalidated encoding (the validator
    reads the plain shape)."""
    for name, record in _UNION_RECORDS:
        if datum.get(name) is not None:
            datum[name] = (record, datum[name])
    markings = datum["markings"]
    if any(markings.get(name) is not None for name, _ in _MARKING_RECORDS):
        markings = datum["markings"] = dict(markings)
        for name, record in _MARKING_RECORDS:
            if markings.get(name) is not None:
                markings[name] = (record, markings[name])
    return datum


def _header_version(header: Header, r: SchemaRegistry) -> SchemaVersion:
    # Commitments came with Header v3; a header without one is written as v2, so every event
    # written before commitments keeps its bytes (and its signatures) unchanged.
    versions = r.versions(HEADER_RECORD)
    return versions[2] if header.commitment is not None else versions[1]


def _envelope_version(header: Header, r: SchemaRegistry) -> SchemaVersion:
    versions = r.versions(ENVELOPE_RECORD)
    return versions[2] if header.commitment is not None else versions[1]


def proof_bytes(envelope: Envelope, *, reg: SchemaRegistry | None = None) -> bytes:
    """The Avro binary of the envelope's ``proof`` field (its union branch index, then the
    ``Proof`` record): the last bytes of an Envelope v3 body, and what a view's signatures
    cover besides the header and payload (docs/EVENTS.md).

    Written by hand — fastavro finds a union's branch by trying each in turn, which for a
    proof of ~100 entries was a third of a router's encoding — and byte for byte what
    fastavro writes (tests/unit/test_envelope_parts.py). Raises :class:`EncodeError` for an
    entry of the wrong size or kind."""
    del reg  # the Proof record is fixed by Envelope v3 (its layout is checked by _layout)
    return proof_field_bytes(envelope.proof)


_NULL_BRANCH = b"\x00"
_SALT_BRANCH = b"\x02"
_WITHHELD_BRANCH = b"\x04"
_SALT_BYTES = 16
_SUBTREE_HASH_BYTES = 32


_SMALL_SIZES = tuple(_WITHHELD_BRANCH + bytes([n << 1]) for n in range(64))
"""A withheld entry's branch and slot count for counts 0-63 (one zig-zag byte each)."""


def proof_field_bytes(proof: Sequence[Entry] | None) -> bytes:
    """Envelope v3's ``proof`` field as Avro binary (see :func:`proof_bytes`)."""
    if proof is None:
        return _NULL_BRANCH
    if not proof:
        return b"\x02\x00"  # the Proof branch with an empty entries array
    parts = [b"\x02", _zigzag_varint(len(proof))]
    append = parts.append
    for n, e in enumerate(proof):
        # The two common shapes first, by exact type (a proof has ~100 entries per view).
        if type(e) is bytes and len(e) == _SALT_BYTES:
            append(_SALT_BRANCH + e)
        elif type(e) is Withheld and type(e.size) is int and 0 <= e.size < len(_SMALL_SIZES):
            if len(e.hash) != _SUBTREE_HASH_BYTES:
                raise EncodeError(f"proof.entries[{n}]: not a slot count and a 32-byte hash")
            append(_SMALL_SIZES[e.size] + e.hash)
        elif e is None:
            append(_NULL_BRANCH)
        elif isinstance(e, Withheld):
            if not isinstance(e.size, int) or len(e.hash) != _SUBTREE_HASH_BYTES:
                raise EncodeError(f"proof.entries[{n}]: not a slot count and a 32-byte hash")
            append(_WITHHELD_BRANCH + _zigzag_varint(e.size) + bytes(e.hash))
        elif isinstance(e, bytes) and len(e) == _SALT_BYTES:
            append(_SALT_BRANCH + e)
        else:
            raise EncodeError(f"proof.entries[{n}]: not a 16-byte salt, null or withheld subtree")
    append(b"\x00")
    return b"".join(parts)


def signatures_bytes(
    signatures: Sequence[Signature], *, reg: SchemaRegistry | None = None, check: bool = True
) -> bytes:
    """A signature list as Avro binary ``array<Signature>``: what a countersignature covers.

    Avro writes an array as one block: the item count as a zig-zag varint, each item's
    record body, then a zero count; an empty array is the single byte ``00``.
    """
    return signature_array_bytes([signature_bytes(s, reg=reg, check=check) for s in signatures])


def signature_bytes(
    signature: Signature, *, reg: SchemaRegistry | None = None, check: bool = True
) -> bytes:
    """One signature as the Avro binary body of a ``Signature`` record (``check``: as
    :func:`broker.events.codec.encode_body`)."""
    r = reg or registry()
    return codec.encode_body(
        r.versions(SIGNATURE_RECORD)[0], signature_to_dict(signature), reg=r, check=check
    )


def signature_array_bytes(items: Sequence[bytes]) -> bytes:
    """``array<Signature>`` from its items' bodies (see :func:`signatures_bytes`)."""
    if not items:
        return b"\x00"
    return _zigzag_varint(len(items)) + b"".join(items) + b"\x00"


def _zigzag_varint(n: int) -> bytes:
    value = (n << 1) ^ (n >> 63)
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_envelope(
    envelope: Envelope,
    *,
    reg: SchemaRegistry | None = None,
    check: bool = True,
    writer: SchemaVersion | None = None,
) -> bytes:
    """The envelope in single-object encoding, as it travels and is archived.

    ``check=False`` skips validation, for an envelope made of decoded or already-validated
    parts (see :func:`broker.events.codec.encode_body`). ``writer``: an earlier Envelope
    version to write (the canonical-bytes check of an envelope written with it); by
    default the version its header needs (v3 for a committed event)."""
    r = reg or registry()
    chosen = writer or _envelope_version(envelope.header, r)
    layout = _layout(chosen, r)
    if layout is None:
        return _encode_envelope_datum(envelope, chosen, r, check)
    datum = header_to_dict(envelope.header)
    head = codec.encode_body(
        layout.header, datum if check else _named_unions(datum), reg=r, check=check
    )
    return _assemble(chosen, layout, envelope, head, r, check)


def _encode_envelope_datum(
    envelope: Envelope, chosen: SchemaVersion, r: SchemaRegistry, check: bool
) -> bytes:
    """fastavro's encoding of the whole envelope record (for a layout :func:`_assemble` does
    not know)."""
    datum: dict[str, Any] = {
        "header": header_to_dict(envelope.header),
        "payload": envelope.payload,
        SIGNATURES_FIELD: [signature_to_dict(s) for s in envelope.signatures],
    }
    if chosen.version >= 3:
        datum["proof"] = (
            None if envelope.proof is None else {"entries": proof_to_list(envelope.proof)}
        )
    return codec.encode(chosen, datum, reg=r, check=check)


def encode_envelope_with_header(
    envelope: Envelope,
    header: bytes,
    *,
    reg: SchemaRegistry | None = None,
    proof: bytes | None = None,
) -> bytes:
    """:func:`encode_envelope` with ``check=False``, given ``header``: the envelope header's
    :func:`header_bytes` (the caller has them from signing), so the header is encoded once;
    ``proof``: likewise the envelope's :func:`proof_bytes`, when the caller has them."""
    r = reg or registry()
    chosen = _envelope_version(envelope.header, r)
    layout = _layout(chosen, r)
    if layout is None or layout.header is not _header_version(envelope.header, r):
        return encode_envelope(envelope, reg=r, check=False)
    return _assemble(chosen, layout, envelope, header, r, check=False, proof=proof)


def _assemble(
    version: SchemaVersion,
    layout: _Layout,
    envelope: Envelope,
    header: bytes,
    r: SchemaRegistry,
    check: bool,
    proof: bytes | None = None,
) -> bytes:
    """The envelope from its parts: Avro writes a record as its fields one after another, so
    it is the framing, the header's bytes, the payload as Avro ``bytes``, the signature array
    and (Envelope v3) the proof — byte for byte what fastavro writes for the whole record
    (tests/unit/test_envelope_parts.py), without its per-entry union search."""
    payload = envelope.payload
    parts = [
        codec.MARKER,
        version.fingerprint,
        header,
        _zigzag_varint(len(payload)),
        payload,
        signatures_bytes(envelope.signatures, reg=r, check=check),
    ]
    if layout.proof:
        parts.append(proof_field_bytes(envelope.proof) if proof is None else proof)
    return b"".join(parts)


@dataclass(frozen=True)
class _Layout:
    """How an Envelope version lays out its fields, when :func:`_assemble` can write it."""

    header: SchemaVersion
    """The Header version its ``header`` field holds."""
    proof: bool
    """Whether a ``proof`` field (Envelope v3's) follows the signatures."""


_PROOF_TYPE: Any = [
    "null",
    {
        "type": "record",
        "name": "org.msht.events.Proof",
        "fields": [
            {
                "name": "entries",
                "type": {
                    "type": "array",
                    "items": [
                        "null",
                        {"type": "fixed", "name": "org.msht.events.Salt", "size": _SALT_BYTES},
                        {
                            "type": "record",
                            "name": "org.msht.events.WithheldSubtree",
                            "fields": [
                                {"name": "size", "type": "int"},
                                {
                                    "name": "hash",
                                    "type": {
                                        "type": "fixed",
                                        "name": "org.msht.events.SubtreeHash",
                                        "size": _SUBTREE_HASH_BYTES,
                                    },
                                },
                            ],
                        },
                    ],
                },
            }
        ],
    },
]
"""The ``proof`` field's type that :func:`proof_field_bytes` writes (docs left out)."""


def _without_docs(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_docs(v) for k, v in node.items() if k != "doc"}
    if isinstance(node, list):
        return [_without_docs(v) for v in node]
    return node


_LAYOUTS: dict[bytes, _Layout | None] = {}


def _layout(envelope: SchemaVersion, r: SchemaRegistry) -> _Layout | None:
    """The layout of an Envelope version whose fields are exactly header, payload (bytes),
    signatures (array of Signature) and optionally a proof of :data:`_PROOF_TYPE`; ``None``
    for any other shape (fastavro then writes the whole record)."""
    if envelope.fingerprint in _LAYOUTS:
        return _LAYOUTS[envelope.fingerprint]
    found: _Layout | None = None
    fields = envelope.schema["fields"]
    names = [f["name"] for f in fields]
    header = next((h for h in r.versions(HEADER_RECORD) if fields[0]["type"] == h.schema), None)
    signature = r.versions(SIGNATURE_RECORD)[0]
    if (
        names[:3] == ["header", "payload", SIGNATURES_FIELD]
        and header is not None
        and fields[1]["type"] == "bytes"
        and fields[2]["type"]["type"] == "array"
        and fields[2]["type"]["items"] in (signature.name, signature.schema)
        and (names[3:] == [] or (names[3:] == ["proof"] and
                                 _without_docs(fields[3]["type"]) == _PROOF_TYPE))
    ):  # fmt: skip
        found = _Layout(header, proof=len(names) == 4)
    _LAYOUTS[envelope.fingerprint] = found
    return found


def decode_envelope(data: bytes, *, reg: SchemaRegistry | None = None) -> Envelope:
    """An envelope from its encoded bytes. Raises only :class:`~broker.errors.CodecError`."""
    decoded = codec.decode(data, ENVELOPE_RECORD, reg=reg)
    record = decoded.record
    try:
        envelope = Envelope(
            header=header_from_dict(record["header"]),
            payload=bytes(record["payload"]),
            signatures=tuple(signature_from_dict(s) for s in record[SIGNATURES_FIELD]),
            proof=None
            if record.get("proof") is None
            else proof_from_list(record["proof"]["entries"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedBodyError(f"envelope: record is not an envelope ({exc})") from exc
    # Signatures cover the Avro binary of the decoded header, so the bytes must be the one
    # canonical encoding of their values; otherwise two byte strings could share a signature.
    try:
        # With the version it was written with: an Envelope v1 (no delivery provenance)
        # stays readable after v2 became current.
        canonical = encode_envelope(envelope, reg=reg, check=False, writer=decoded.writer)
    except EncodeError as exc:
        raise MalformedBodyError(f"envelope: decoded values do not re-encode ({exc})") from exc
    if canonical != bytes(data):
        raise MalformedBodyError("envelope: bytes are not the canonical Avro binary encoding")
    # Envelope v3 <=> a committed header with its proof: anything else has two spellings.
    committed = envelope.header.commitment is not None
    if (decoded.writer.version >= 3) != committed or committed != (envelope.proof is not None):
        raise MalformedBodyError(
            "envelope: an Envelope v3 carries a header commitment and its proof, and only it does"
        )
    if envelope.header.format_version != FORMAT_VERSION:
        raise UnknownFormatError(
            f"header.format_version: {envelope.header.format_version} is not a format this "
            f"build reads (only {FORMAT_VERSION})"
        )
    return envelope


def decode_payload(envelope: Envelope, *, reg: SchemaRegistry | None = None) -> dict[str, Any]:
    """The payload record, read with its writer schema into the newest version of its record.

    Raises :class:`EventTypeMismatchError` when the event type is unknown or does not carry
    ``payload_schema_name``, :class:`UnknownSchemaError` when the header's fingerprint is
    unknown or does not belong to ``payload_schema_name``, and other
    :class:`~broker.errors.CodecError` kinds for a body that does not decode.
    """
    r = reg or registry()
    check_event_type(envelope.header.event_type, envelope.header.payload_schema_name)
    writer = r.by_fingerprint(envelope.header.payload_schema)
    if writer.name != envelope.header.payload_schema_name:
        raise UnknownSchemaError(
            f"header.payload_schema names {writer.name}, "
            f"but payload_schema_name says {envelope.header.payload_schema_name}"
        )
    return codec.decode_body(envelope.payload, writer, r.current(writer.name))


def envelope_digest(data: bytes) -> bytes:
    """SHA-256 of an encoded envelope (the provenance digest of an original)."""
    return hashlib.sha256(data).digest()
