"""Typed sensitivity: every person field says whose data it is and what kind."""

from __future__ import annotations

import pytest

from broker.errors import ConfigError
from broker.events.fields import KINDS, ROLES, schema_fields
from broker.events.schemas import registry

PAYLOADS = ("Referral", "CaseUpdate", "Alert")


@pytest.mark.parametrize("record", PAYLOADS)
def test_every_tagged_field_says_whose_data_it_is(record: str) -> None:
    for f in registry().fields(record):
        if f.kinds:
            assert f.role in ROLES or f.role_from is not None, f.path


@pytest.mark.parametrize("record", PAYLOADS)
def test_every_tag_is_from_the_vocabulary(record: str) -> None:
    for f in registry().fields(record):
        assert f.tags <= KINDS | {"staff"}, f.path


@pytest.mark.parametrize(
    ("record", "path"),
    [
        ("Referral", "crime_reference"),
        ("Referral", "duplicate_of"),
        ("Referral", "home_office_reference"),
        ("Referral", "victim.identity_documents"),
        ("Referral", "victim.pnc_id"),
        ("CaseUpdate", "victims[].referral_id"),
        ("CaseUpdate", "defendants[].arrest_summons_number"),
        ("Alert", "interpol_reference"),
        ("Alert", "siena_message_id"),
    ],
)
def test_linking_identifiers_are_tagged_linking(record: str, path: str) -> None:
    f = {f.path: f for f in registry().fields(record)}[path]
    assert "linking" in f.kinds


@pytest.mark.parametrize(
    ("record", "path", "role", "person"),
    [
        ("Referral", "victim.forename", "victim", ""),
        ("Referral", "account", "victim", ""),
        ("Referral", "exploiters[].details", "suspect", "exploiters[]"),
        ("Referral", "first_responder.phone", "reporter", ""),
        ("CaseUpdate", "victims[].person.surname", "victim", "victims[]"),
        ("CaseUpdate", "defendants[].person.surname", "suspect", "defendants[]"),
        ("CaseUpdate", "witnesses[].person.surname", "witness", "witnesses[]"),
        ("CaseUpdate", "officer_in_case", "staff", ""),
        ("CaseUpdate", "defendants[].charges[].wording", "mixed", "defendants[]"),
        ("Alert", "summary", "mixed", ""),
    ],
)
def test_role_and_person_of_a_field(record: str, path: str, role: str, person: str) -> None:
    f = {f.path: f for f in registry().fields(record)}[path]
    assert (f.role, f.person) == (role, person)


def test_alert_persons_read_their_role_from_status() -> None:
    f = {f.path: f for f in registry().fields("Alert")}["persons[].person.surname"]
    assert (f.role, f.person, f.role_from) == (None, "persons[]", "persons[].status")


def test_a_role_outside_the_vocabulary_is_refused() -> None:
    schema = {
        "type": "record",
        "name": "R",
        "fields": [{"name": "x", "type": "string", "msht.person": "neighbour"}],
    }
    with pytest.raises(ConfigError, match=r"msht\.person"):
        schema_fields(schema)


def test_old_single_identity_tag_is_still_read() -> None:
    schema = {
        "type": "record",
        "name": "R",
        "fields": [{"name": "x", "type": "string", "msht.sensitivity": "identity"}],
    }
    (f,) = schema_fields(schema)
    assert f.tags == frozenset({"identity"})
    assert f.kinds == frozenset({"identity"})
    assert f.role is None
