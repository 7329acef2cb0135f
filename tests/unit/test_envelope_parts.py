"""An envelope assembled from its parts is byte for byte what fastavro writes for the record.

The router and publishers write an envelope as its framing, the header's bytes (encoded
once, also signed), the payload, the signature array and — Envelope v3 — the proof, the
proof's union branches written by hand (#19). Every field a recipient verifies depends on
those bytes being the one canonical Avro encoding, so here the assembly is compared with
fastavro's encoding of the whole envelope record for every Envelope version, over varied
headers (with and without provenance and commitment), signatures and proofs of every
entry kind.
"""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from broker.errors import EncodeError
from broker.events import codec
from broker.events.envelope import (
    ENVELOPE_RECORD,
    SIGNATURES_FIELD,
    Envelope,
    Evaluation,
    Grading,
    Header,
    Markings,
    Provenance,
    Signature,
    decode_envelope,
    encode_envelope,
    encode_envelope_with_header,
    header_bytes,
    header_to_dict,
    proof_bytes,
    proof_to_list,
    signature_to_dict,
)
from broker.events.proof import Commitment, Entry, Withheld
from broker.events.schemas import registry
from broker.types import AgencyId, EventId, KeyId, Subject

_T0 = datetime(2026, 1, 1, tzinfo=UTC)
_times = st.integers(min_value=0, max_value=10**9).map(lambda s: _T0 + timedelta(seconds=s))
_text = st.text(max_size=12)

_signatures = st.builds(
    Signature,
    signer=_text.map(AgencyId),
    key_id=_text.map(KeyId),
    algorithm=st.just("ED25519"),
    signed_at=_times,
    signature=st.binary(min_size=64, max_size=64),
)
_entries: st.SearchStrategy[Entry] = st.one_of(
    st.none(),
    st.binary(min_size=16, max_size=16),
    st.builds(
        Withheld,
        # Counts on both sides of the one-byte zig-zag (0-63) and far beyond.
        st.one_of(
            st.integers(min_value=0, max_value=130), st.integers(min_value=1, max_value=2**20)
        ),
        st.binary(min_size=32, max_size=32),
    ),
)
_provenance = st.builds(
    Provenance,
    original_digest=st.binary(min_size=32, max_size=32),
    original_signatures=st.lists(_signatures, max_size=2).map(tuple),
    recipient=_text,
    view=st.none() | _text,
    rule=st.none() | _text,
    withheld=st.lists(_text, max_size=3).map(tuple),
)


# Every marking record in a null-or-record union, present or not (the header's encoder
# names those unions' branches).
_markings = st.builds(
    Markings,
    classification=st.sampled_from(["OFFICIAL", "OFFICIAL_SENSITIVE", "SECRET"]),
    tlp=st.sampled_from(["CLEAR", "AMBER", "AMBER_STRICT", "RED"]),
    siena_handling=st.none() | st.sampled_from(["H0", "H1", "H2", "H3"]),
    siena_restrictions=st.none() | _text,
    grading=st.none()
    | st.builds(
        Grading,
        source=st.sampled_from(["SOURCE_1", "SOURCE_2", "SOURCE_3"]),
        intelligence=st.sampled_from(list("ABCDE")),
        handling=st.sampled_from(["P", "C"]),
    ),
    evaluation=st.none()
    | st.builds(
        Evaluation,
        source=st.sampled_from(list("ABCX")),
        information=st.sampled_from(["INFO_1", "INFO_2", "INFO_3", "INFO_4"]),
    ),
    intended_recipients=st.lists(_text, max_size=2).map(tuple),
    origin_country=st.none() | st.just("GB"),
    origin_authorised_recipients=st.lists(_text, max_size=2).map(tuple),
)


@st.composite
def envelopes(draw: st.DrawFn) -> Envelope:
    committed = draw(st.booleans())
    header = Header(
        event_id=EventId(draw(_text)),
        event_type="nrm.referral",
        source=AgencyId(draw(_text)),
        subject=Subject(draw(_text)),
        occurred_at=draw(_times),
        published_at=draw(_times),
        markings=draw(_markings),
        payload_schema=registry().current("org.msht.events.Referral").fingerprint,
        payload_schema_name="org.msht.events.Referral",
        provenance=draw(st.none() | _provenance),
        commitment=Commitment("msht-commit/v1", draw(st.binary(min_size=32, max_size=32)), 212)
        if committed
        else None,
    )
    return Envelope(
        header=header,
        payload=draw(st.binary(max_size=300)),
        signatures=tuple(draw(st.lists(_signatures, max_size=3))),
        proof=tuple(draw(st.lists(_entries, max_size=40))) if committed else None,
    )


def _fastavro_envelope(envelope: Envelope, version: int) -> bytes:
    """fastavro's single-object encoding of the whole envelope record (the reference)."""
    schema = registry().versions(ENVELOPE_RECORD)[version - 1]
    datum: dict[str, Any] = {
        "header": header_to_dict(envelope.header),
        "payload": envelope.payload,
        SIGNATURES_FIELD: [signature_to_dict(s) for s in envelope.signatures],
    }
    if version >= 3:
        datum["proof"] = (
            None if envelope.proof is None else {"entries": proof_to_list(envelope.proof)}
        )
    out = io.BytesIO()
    fastavro.schemaless_writer(out, schema.parsed, datum)
    return codec.MARKER + schema.fingerprint + out.getvalue()


@settings(max_examples=150, deadline=None)
@given(envelopes())
def test_encode_envelope_is_fastavros_encoding_of_the_record(envelope: Envelope) -> None:
    version = 3 if envelope.header.commitment is not None else 2
    assert encode_envelope(envelope, check=False) == _fastavro_envelope(envelope, version)


@settings(max_examples=100, deadline=None)
@given(envelopes(), st.sampled_from([1, 2, 3]))
def test_every_envelope_version_as_writer_is_fastavros_encoding(
    envelope: Envelope, version: int
) -> None:
    # Only what the version can hold: commitments came with v3, delivery provenance with v2.
    header = envelope.header
    if version < 3:
        header = replace(header, commitment=None)
        envelope = replace(envelope, proof=None)
    if version < 2:
        header = replace(header, provenance=None)
    envelope = replace(envelope, header=header)
    writer = registry().versions(ENVELOPE_RECORD)[version - 1]
    encoded = encode_envelope(envelope, check=False, writer=writer)
    assert encoded == _fastavro_envelope(envelope, version)


@settings(max_examples=100, deadline=None)
@given(envelopes())
def test_encoding_with_the_signed_header_bytes_is_the_same_envelope(envelope: Envelope) -> None:
    head = header_bytes(envelope.header, check=False)
    assert encode_envelope_with_header(envelope, head) == encode_envelope(envelope, check=False)


@settings(max_examples=100, deadline=None)
@given(envelopes())
def test_proof_bytes_are_the_last_bytes_of_an_envelope_v3(envelope: Envelope) -> None:
    assume(envelope.header.commitment is not None)
    encoded = _fastavro_envelope(envelope, 3)
    assert encoded.endswith(proof_bytes(envelope))


@settings(max_examples=60, deadline=None)
@given(envelopes())
def test_an_assembled_envelope_decodes_to_itself(envelope: Envelope) -> None:
    decoded = decode_envelope(encode_envelope(envelope, check=False))
    assert decoded == envelope


@pytest.mark.parametrize(
    "entry",
    [b"\x00" * 15, b"\x00" * 17, Withheld(3, b"\x00" * 31), "a salt", 7],
    ids=["short-salt", "long-salt", "short-hash", "text", "number"],
)
def test_a_proof_entry_of_the_wrong_kind_or_size_is_an_encode_error_naming_it(
    entry: Any,
) -> None:
    envelope = Envelope(
        header=Header(
            event_id=EventId("e"),
            event_type="nrm.referral",
            source=AgencyId("met-police"),
            subject=Subject("s"),
            occurred_at=_T0,
            published_at=_T0,
            markings=Markings(classification="OFFICIAL", tlp="AMBER"),
            payload_schema=registry().current("org.msht.events.Referral").fingerprint,
            payload_schema_name="org.msht.events.Referral",
            commitment=Commitment("msht-commit/v1", b"\x00" * 32, 212),
        ),
        payload=b"",
        proof=(None, entry),
    )
    with pytest.raises(EncodeError, match=r"proof\.entries\[1\]"):
        encode_envelope(envelope, check=False)
