"""Single-object codec: round trips, strict writing, and each kind of bad input."""

from __future__ import annotations

from typing import Any

import pytest
from fastavro.validation import ValidationError

from broker.errors import (
    BadMarkerError,
    EncodeError,
    MalformedBodyError,
    TruncatedEventError,
    UnknownSchemaError,
)
from broker.events import codec
from broker.events.envelope import build_envelope, decode_envelope, decode_payload, encode_envelope
from broker.events.schemas import registry
from tests.unit.event_samples import OCCURRED, PUBLISHED, alert, case_update, markings, referral


@pytest.mark.parametrize(
    ("record", "payload"),
    [("Referral", referral()), ("CaseUpdate", case_update()), ("Alert", alert())],
)
def test_payload_round_trips_through_single_object_encoding(
    record: str, payload: dict[str, Any]
) -> None:
    data = codec.encode(record, payload)
    decoded = codec.decode(data)
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == registry().current(record).fingerprint
    assert decoded.writer.name.endswith(record)
    again = codec.encode(record, decoded.record)
    assert again == data


def test_envelope_round_trips() -> None:
    env = build_envelope(
        event_type="referral.nrm",
        source="wyp",
        subject="R-1",
        markings=markings(),
        payload=referral(),
        occurred_at=OCCURRED,
        published_at=PUBLISHED,
    )
    decoded = decode_envelope(encode_envelope(env))
    assert decoded == env
    assert decode_payload(decoded)["victim"]["surname"] == "Testova"


def test_empty_bytes_are_truncated() -> None:
    with pytest.raises(TruncatedEventError):
        codec.decode(b"")


def test_marker_without_full_fingerprint_is_truncated() -> None:
    data = codec.encode("Referral", referral())
    with pytest.raises(TruncatedEventError, match="fingerprint"):
        codec.decode(data[:7])


def test_body_cut_short_is_truncated() -> None:
    data = codec.encode("Referral", referral())
    with pytest.raises(TruncatedEventError, match="ends before"):
        codec.decode(data[:-20])


def test_wrong_marker_is_refused() -> None:
    data = codec.encode("Referral", referral())
    with pytest.raises(BadMarkerError, match="c301"):
        codec.decode(b"\xc3\x02" + data[2:])


def test_unknown_fingerprint_is_refused() -> None:
    data = codec.encode("Referral", referral())
    with pytest.raises(UnknownSchemaError, match="fingerprint"):
        codec.decode(data[:2] + b"\x00" * 8 + data[10:])


def test_trailing_bytes_are_malformed() -> None:
    data = codec.encode("Referral", referral())
    with pytest.raises(MalformedBodyError, match="follow the end"):
        codec.decode(data + b"\x00")


def test_garbage_body_is_malformed_not_a_fastavro_error() -> None:
    data = codec.encode("Referral", referral())
    with pytest.raises((MalformedBodyError, TruncatedEventError)):
        codec.decode(data[:10] + b"\xff" * 40)


def test_reader_of_another_record_is_refused() -> None:
    data = codec.encode("Referral", referral())
    with pytest.raises(UnknownSchemaError, match="Alert"):
        codec.decode(data, "Alert")


def test_unknown_field_is_refused_naming_it() -> None:
    with pytest.raises(EncodeError, match="bogus"):
        codec.encode("Referral", referral(bogus="x"))


def test_missing_required_field_is_named() -> None:
    payload = referral()
    del payload["kind"]
    with pytest.raises(EncodeError, match=r"Referral\.kind: required field is missing"):
        codec.encode("Referral", payload)


def test_wrong_type_names_the_field_without_quoting_the_value() -> None:
    with pytest.raises(EncodeError, match="age_group") as caught:
        codec.encode("Referral", referral(age_group="Testova"))
    assert "Testova" not in str(caught.value)


def test_non_canonical_envelope_bytes_are_refused() -> None:
    env = build_envelope(
        event_type="alert.inbound",
        source="nca",
        subject="A-1",
        markings=markings(),
        payload=alert(),
        occurred_at=OCCURRED,
        published_at=PUBLISHED,
    )
    data = encode_envelope(env)
    # format_version 1 is the zig-zag varint 02; 82 00 is the same value, over-long.
    assert data[10] == 0x02
    with pytest.raises(MalformedBodyError, match="canonical"):
        decode_envelope(data[:10] + b"\x82\x00" + data[11:])


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(EncodeError, match="occurred_at"):
        build_envelope(
            event_type="alert.inbound",
            source="nca",
            subject="A-1",
            markings=markings(),
            payload=alert(),
            occurred_at=OCCURRED.replace(tzinfo=None),
        )


def test_unknown_event_type_is_refused() -> None:
    with pytest.raises(EncodeError, match="event_type"):
        build_envelope(
            event_type="referral.unknown",
            source="wyp",
            subject="R-1",
            markings=markings(),
            payload=referral(),
            occurred_at=OCCURRED,
        )


@pytest.mark.parametrize(
    ("record", "payload"),
    [("Referral", referral()), ("CaseUpdate", case_update()), ("Alert", alert())],
)
def test_a_valid_record_is_checked_without_building_validation_errors(
    record: str, payload: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 19: strict validation built a ValidationError (a JSON dump of the schema) for
    # every union branch a value did not match, even when another did: most of what a
    # publisher's encode cost. Only a record that does not fit may build one now.
    built: list[object] = []
    original = ValidationError.__init__

    def counting(self: ValidationError, *errors: object) -> None:
        built.append(errors)
        original(self, *errors)  # type: ignore[no-untyped-call]  # fastavro is untyped

    monkeypatch.setattr(ValidationError, "__init__", counting)
    codec.encode(record, payload)
    assert built == []
