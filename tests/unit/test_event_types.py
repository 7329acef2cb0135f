"""An event's type and its payload record agree, and only format version 1 is read.

Rules are chosen by event type, so a ``referral.nrm`` whose payload is a bare ``Person`` (or
any record other than the one ``broker.events.schemas.EVENT_TYPES`` gives it) must never be read
as a referral; nor may an envelope of a format this build does not know.
"""

from __future__ import annotations

import dataclasses

import pytest

from broker.errors import EncodeError, EventTypeMismatchError, UnknownFormatError
from broker.events import codec
from broker.events.envelope import (
    FORMAT_VERSION,
    Envelope,
    build_envelope,
    decode_envelope,
    decode_payload,
    encode_envelope,
)
from broker.events.schemas import EVENT_TYPES, SchemaVersion, registry
from tests.unit.event_samples import OCCURRED, PUBLISHED, alert, case_update, markings, person
from tests.unit.event_samples import referral as referral_payload

SAMPLES = {
    "org.msht.events.Referral": referral_payload,
    "org.msht.events.CaseUpdate": case_update,
    "org.msht.events.Alert": alert,
}


def genuine(event_type: str) -> Envelope:
    """A well-formed unsigned event of ``event_type`` with a sample payload."""
    return build_envelope(
        event_type=event_type,
        source="met-police",
        subject="S-1",
        markings=markings(),
        payload=SAMPLES[EVENT_TYPES[event_type]](),
        occurred_at=OCCURRED,
        published_at=PUBLISHED,
    )


def wrong_records(event_type: str) -> list[SchemaVersion]:
    """Every schema version of every type other than the one ``event_type`` carries."""
    return [
        version
        for name in registry().names()
        if name != EVENT_TYPES[event_type]
        for version in registry().versions(name)
    ]


def with_payload_record(envelope: Envelope, version: SchemaVersion, body: bytes) -> Envelope:
    """``envelope`` claiming ``version`` as its payload's writer schema, carrying ``body``."""
    header = dataclasses.replace(
        envelope.header, payload_schema=version.fingerprint, payload_schema_name=version.name
    )
    return dataclasses.replace(envelope, header=header, payload=body)


MISMATCHES = [
    pytest.param(event_type, version, id=f"{event_type}-{version.short_name}.v{version.version}")
    for event_type in sorted(EVENT_TYPES)
    for version in wrong_records(event_type)
]


@pytest.mark.parametrize(("event_type", "version"), MISMATCHES)
def test_every_event_type_refuses_every_other_payload_record(
    event_type: str, version: SchemaVersion
) -> None:
    envelope = genuine(event_type)
    forged = with_payload_record(envelope, version, envelope.payload)
    with pytest.raises(EventTypeMismatchError, match=rf"{event_type} carries .* {version.name}"):
        decode_payload(decode_envelope(encode_envelope(forged, check=False)))


def test_every_event_type_reads_its_own_payload_record() -> None:
    for event_type in EVENT_TYPES:
        payload = decode_payload(genuine(event_type))
        assert payload  # decoded, not refused


def test_a_referral_whose_payload_is_a_well_formed_bare_person_is_refused() -> None:
    person_v1 = registry().current("Person")
    body = codec.encode_body(person_v1, person())
    forged = with_payload_record(genuine("referral.nrm"), person_v1, body)
    with pytest.raises(EventTypeMismatchError, match=r"referral\.nrm carries .*Referral"):
        decode_payload(forged)


def test_an_event_type_not_in_the_table_is_refused_on_reading() -> None:
    envelope = genuine("referral.nrm")
    header = dataclasses.replace(envelope.header, event_type="referral.unknown")
    with pytest.raises(EventTypeMismatchError, match=r"referral\.unknown"):
        decode_payload(dataclasses.replace(envelope, header=header))


@pytest.mark.parametrize(("event_type", "version"), MISMATCHES)
def test_an_event_is_never_built_with_another_payload_record(
    event_type: str, version: SchemaVersion
) -> None:
    with pytest.raises(EncodeError, match=r"event_type"):
        build_envelope(
            event_type=event_type,
            source="met-police",
            subject="S-1",
            markings=markings(),
            payload={},
            occurred_at=OCCURRED,
            payload_record=version.name,
        )


def _with_format(version: int) -> bytes:
    envelope = genuine("alert.inbound")
    header = dataclasses.replace(envelope.header, format_version=version)
    return encode_envelope(dataclasses.replace(envelope, header=header), check=False)


@pytest.mark.parametrize("version", [0, 2, 3, -1, 2**31 - 1])
def test_an_envelope_of_an_unknown_format_version_is_refused(version: int) -> None:
    with pytest.raises(UnknownFormatError, match=rf"format_version: {version} "):
        decode_envelope(_with_format(version))


def test_format_version_1_is_read() -> None:
    assert decode_envelope(_with_format(FORMAT_VERSION)).header.format_version == 1
