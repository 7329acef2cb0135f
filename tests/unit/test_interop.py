"""Independent implementations read our bytes: Apache Avro, PyNaCl, the Avro spec's test cases."""

from __future__ import annotations

import base64
import io
import json
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import avro.io
import avro.name
import avro.schema
import nacl.signing
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from broker.crypto.sealed_fields import seal_protected
from broker.crypto.sealing import SealScope
from broker.crypto.signing import countersign, sign
from broker.crypto.signing_keys import generate_signing_key
from broker.events import codec
from broker.events.envelope import build_envelope, decode_payload, encode_envelope
from broker.events.schemas import canonical_form, crc64_avro, fingerprint, registry
from broker.types import AgencyId, EventId, PartnerId
from tests.unit.event_samples import OCCURRED, PUBLISHED, alert, case_update, markings, referral

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"

# The Avro specification's canonical form and fingerprint test cases
# (apache/avro share/test/data/schema-tests.txt); fingerprints are Java signed longs.
SPEC_CASES: list[tuple[str, str, int | None]] = [
    ('"null"', '"null"', 7195948357588979594),
    ('{"type":"null"}', '"null"', None),
    ('"boolean"', '"boolean"', -6970731678124411036),
    ('"int"', '"int"', 8247732601305521295),
    ('"long"', '"long"', -3434872931120570953),
    ('"float"', '"float"', 5583340709985441680),
    ('"double"', '"double"', -8181574048448539266),
    ('"bytes"', '"bytes"', 5746618253357095269),
    ('"string"', '"string"', -8142146995180207161),
    ("[  ]", "[]", -1241056759729112623),
    ('[ "int"  ]', '["int"]', -5232228896498058493),
    ('[ "int" , {"type":"boolean"} ]', '["int","boolean"]', 5392556393470105090),
    (
        '{"fields":[], "type":"record", "name":"foo"}',
        '{"name":"foo","type":"record","fields":[]}',
        -4824392279771201922,
    ),
    (
        '{"fields":[], "type":"record", "name":"foo", "namespace":"x.y"}',
        '{"name":"x.y.foo","type":"record","fields":[]}',
        5916914534497305771,
    ),
    (
        '{"fields":[], "type":"record", "name":"a.b.foo", "namespace":"x.y"}',
        '{"name":"a.b.foo","type":"record","fields":[]}',
        -4616218487480524110,
    ),
    (
        '{"fields":[], "type":"record", "name":"foo", "doc":"foo", "aliases":["foo","bar"]}',
        '{"name":"foo","type":"record","fields":[]}',
        -4824392279771201922,
    ),
    (
        '{"fields":[{"type":{"type":"boolean"}, "name":"f1"}], "type":"record", "name":"foo"}',
        '{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}',
        7843277075252814651,
    ),
    (
        '{ "fields":[{"type":"boolean", "aliases":[], "name":"f1", "default":"true"},'
        ' {"order":"descending","name":"f2","doc":"Hello","type":"int"}],'
        ' "type":"record", "name":"foo" }',
        '{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"},'
        '{"name":"f2","type":"int"}]}',
        -4860222112080293046,
    ),
    (
        '{"type":"enum", "name":"foo", "symbols":["A1"]}',
        '{"name":"foo","type":"enum","symbols":["A1"]}',
        -6342190197741309591,
    ),
    (
        '{"namespace":"x.y.z", "type":"enum", "name":"foo", "doc":"foo bar",'
        ' "symbols":["A1", "A2"]}',
        '{"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]}',
        -4448647247586288245,
    ),
    (
        '{"name":"foo","type":"fixed","size":15}',
        '{"name":"foo","type":"fixed","size":15}',
        1756455273707447556,
    ),
    (
        '{"namespace":"x.y.z", "type":"fixed", "name":"foo", "doc":"foo bar", "size":32}',
        '{"name":"x.y.z.foo","type":"fixed","size":32}',
        -3064184465700546786,
    ),
    (
        '{ "items":{"type":"null"}, "type":"array"}',
        '{"type":"array","items":"null"}',
        -589620603366471059,
    ),
    (
        '{ "values":"string", "type":"map"}',
        '{"type":"map","values":"string"}',
        -8732877298790414990,
    ),
    (
        '{"name":"PigValue","type":"record",'
        ' "fields":[{"name":"value", "type":["null", "int", "long", "PigValue"]}]}',
        '{"name":"PigValue","type":"record","fields":[{"name":"value",'
        '"type":["null","int","long","PigValue"]}]}',
        -1759257747318642341,
    ),
]


@pytest.mark.parametrize(("schema", "canonical", "expected"), SPEC_CASES)
def test_canonical_form_and_fingerprint_match_the_specification(
    schema: str, canonical: str, expected: int | None
) -> None:
    assert canonical_form(json.loads(schema)) == canonical
    if expected is not None:
        assert crc64_avro(canonical.encode()) == expected % 2**64
        assert fingerprint(json.loads(schema)) == (expected % 2**64).to_bytes(8, "little")


def test_logical_type_is_stripped_from_the_canonical_form() -> None:
    # Specification, Parsing Canonical Form [STRIP]: only name, type, fields, symbols,
    # items, values and size survive; so timestamp-millis canonicalises to plain "long".
    ts = {"type": "long", "logicalType": "timestamp-millis"}
    assert canonical_form(ts) == '"long"'
    assert fingerprint(ts) == fingerprint("long")
    record = {"type": "record", "name": "t", "fields": [{"name": "at", "type": ts}]}
    assert (
        canonical_form(record)
        == '{"name":"t","type":"record","fields":[{"name":"at","type":"long"}]}'
    )


def test_single_object_header_matches_the_specifications_example_for_int() -> None:
    # The Avro single-object header of "int" is C3 01 8F 5C 39 3F 1A D5 75 72.
    assert b"\xc3\x01" + fingerprint("int") == bytes.fromhex("c3018f5c393f1ad57572")


def _apache_schema(*files: str) -> Any:
    """Parse our .avsc files with the Apache library alone, dependencies first."""
    names = avro.name.Names()
    schema = None
    for name in files:
        doc = json.loads((SCHEMAS / name).read_text())
        schema = avro.schema.make_avsc_object(doc, names)
    return schema


def _apache_read(schema: Any, body: bytes) -> Any:
    return avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(io.BytesIO(body)))


SHARED = ("AgeGroup.v1.avsc", "ExploitationType.v1.avsc", "Location.v1.avsc", "Person.v2.avsc")


def test_apache_avro_decodes_our_referral_bytes() -> None:
    schema = _apache_schema(*SHARED, "Referral.v3.avsc")
    data = codec.encode("Referral", referral())
    record = _apache_read(schema, data[10:])
    assert record["victim"]["forename"] == "Ana"
    assert record["exploitation_countries"] == ["GB", "RO"]
    assert record["age_group"] == "ADULT"


def test_apache_avro_decodes_our_case_update_and_alert_bytes() -> None:
    case = _apache_read(
        _apache_schema(*SHARED, "CaseUpdate.v2.avsc"),
        codec.encode("CaseUpdate", case_update())[10:],
    )
    assert case["defendants"][0]["charges"][0]["offence_code"] == "MS15002"
    assert case["defendants"][0]["arrest_date"] == OCCURRED
    names_alert = _apache_read(
        _apache_schema(*SHARED, "Alert.v2.avsc"), codec.encode("Alert", alert())[10:]
    )
    assert names_alert["persons"][0]["status"] == "SUSPECT"


@pytest.mark.parametrize(
    ("files", "record"),
    [
        (("Location.v1.avsc",), "Location"),
        (("Markings.v1.avsc",), "Markings"),
        (("Person.v2.avsc",), "Person"),
        (("Signature.v1.avsc",), None),
    ],
)
def test_apache_avro_agrees_on_fingerprints_where_no_logical_type_is_involved(
    files: tuple[str, ...], record: str | None
) -> None:
    # The Apache Python library keeps logicalType in its canonical form (apache/avro#2976),
    # so it agrees with the specification only for schemas without logical types.
    apache = _apache_schema(*files)
    if record is None:
        # Signature has a timestamp-millis field: here the two rules must differ.
        assert apache.fingerprint("CRC-64-AVRO") != registry().current("Signature").fingerprint
    else:
        assert apache.fingerprint("CRC-64-AVRO") == registry().current(record).fingerprint


def _lp(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _documented_signing_input(
    header_avro: bytes, payload: bytes, sig: dict[str, Any], previous_avro: bytes
) -> bytes:
    millis = int((sig["signed_at"] - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(milliseconds=1))
    return (
        b"msht-broker/event-signature/v1\x00"
        + _lp(sig["signer"].encode())
        + _lp(sig["algorithm"].encode())
        + _lp(sig["key_id"].encode())
        + struct.pack(">q", millis)
        + _lp(header_avro)
        + _lp(payload)
        + _lp(previous_avro)
    )


def test_pynacl_verifies_our_signatures_from_the_documented_signing_input() -> None:
    wyp, router = generate_signing_key("wyp"), generate_signing_key("router")
    env = build_envelope(
        event_type="referral.nrm",
        source="wyp",
        subject="R-1",
        markings=markings(),
        payload=referral(),
        occurred_at=OCCURRED,
        published_at=PUBLISHED,
    )
    data = encode_envelope(countersign(sign(env, wyp), router))

    # Everything below uses the Apache library, PyNaCl and docs/EVENTS.md only.
    envelope_schema = _apache_schema(
        "Markings.v1.avsc", "Signature.v1.avsc", "Header.v1.avsc", "Envelope.v1.avsc"
    )
    assert data[:2] == b"\xc3\x01"
    body = data[10:]
    decoder = avro.io.BinaryDecoder(io.BytesIO(body))
    header_schema = envelope_schema.fields_dict["header"].type
    avro.io.DatumReader(header_schema).read(decoder)
    header_avro = body[: decoder.reader.tell()]
    record = _apache_read(envelope_schema, body)
    signatures = record["signatures"]
    signature_schema = envelope_schema.fields_dict["signatures"].type
    public = {
        "wyp": wyp.public_key.public_bytes_raw(),
        "router": router.public_key.public_bytes_raw(),
    }
    for index, sig in enumerate(signatures):
        out = io.BytesIO()
        avro.io.DatumWriter(signature_schema).write(signatures[:index], avro.io.BinaryEncoder(out))
        message = _documented_signing_input(header_avro, record["payload"], sig, out.getvalue())
        nacl.signing.VerifyKey(public[sig["signer"]]).verify(message, sig["signature"])
    assert [s["signer"] for s in signatures] == ["wyp", "router"]


def test_pynacl_rejects_a_signature_over_other_bytes() -> None:
    key = generate_signing_key("wyp")
    env = sign(
        build_envelope(
            event_type="alert.inbound",
            source="wyp",
            subject="A-1",
            markings=markings(),
            payload=alert(),
            occurred_at=OCCURRED,
            published_at=PUBLISHED,
        ),
        key,
    )
    verify_key = nacl.signing.VerifyKey(key.public_key.public_bytes_raw())
    with pytest.raises(nacl.exceptions.BadSignatureError):
        verify_key.verify(b"msht-broker/event-signature/v1\x00other", env.signatures[0].signature)


def _documented_open(
    text: str, place: list[str], scope: tuple[str, str, str], recipient_key: X25519PrivateKey
) -> bytes:
    """Opens a sealed value exactly as docs/SEALING.md describes it; the padded plaintext."""
    assert text.startswith("msht-sealed:v3:")
    body = text[len("msht-sealed:v3:") :]
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    n = raw[0]
    recipient_id = raw[1 : 1 + n]
    ephemeral = raw[9 + n : 41 + n]
    nonce, sealed = raw[41 + n : 53 + n], raw[53 + n :]
    path_bytes = b"".join(_lp(step.encode()) for step in place)
    source, event_id, event_type = (part.encode() for part in scope)
    ctx = _lp(source) + _lp(event_id) + _lp(event_type) + _lp(recipient_id)
    recipient_public = recipient_key.public_key().public_bytes_raw()
    shared = recipient_key.exchange(X25519PublicKey.from_public_bytes(ephemeral))
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=ephemeral + recipient_public,
        info=b"msht-sealed/v3 event-key" + ctx,
    ).derive(shared)
    aad = b"msht-sealed/v3" + ctx + _lp(path_bytes) + raw[: 41 + n]
    return AESGCM(key).decrypt(nonce, sealed, aad)


def test_a_sealed_field_opens_with_the_construction_docs_sealing_describes() -> None:
    recipient = X25519PrivateKey.generate()
    scope = SealScope(AgencyId("met-police"), EventId("ev-1"), "case.charge")
    plain = build_envelope(
        event_type="case.charge", source="met-police", subject="U-1", markings=markings(),
        payload=case_update(), occurred_at=OCCURRED, event_id="ev-1",
    )  # fmt: skip
    sealed = seal_protected(
        decode_payload(plain), "CaseUpdate", scope, PartnerId("cps"), recipient.public_key()
    )
    # The sealed payload still fits the unchanged schema.
    build_envelope(
        event_type="case.charge", source="met-police", subject="U-1", markings=markings(),
        payload=sealed, occurred_at=OCCURRED, event_id="ev-1",
    )  # fmt: skip
    person = sealed["victims"][0]["person"]
    place = ["f:victims", "i:0", "f:person", "f:surname"]
    assert len(b"".join(_lp(step.encode()) for step in place)) == 45  # as the doc says
    parts = ("met-police", "ev-1", "case.charge")
    padded = _documented_open(person["surname"], place, parts, recipient)
    # No commitment salt here (salt length 00), then the tagged value.
    assert padded[: padded.rindex(b"\x80")] == b"\x00sTestova"
    # A union adds no path step: the date of birth sits in the string branch of its union.
    dob = ["f:victims", "i:0", "f:person", "f:date_of_birth"]
    padded = _documented_open(person["date_of_birth"], dob, parts, recipient)
    assert padded[: padded.rindex(b"\x80")] == b"\x00s1999-04-01"
