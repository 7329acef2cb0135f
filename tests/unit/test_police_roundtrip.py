"""Police documents survive native → canonical event → native with every field intact."""

from __future__ import annotations

import pytest

from adapters.intake.identity import derive_event_id
from adapters.police.adapter import PoliceAdapter
from adapters.police.parse import parse_case_json, parse_dtn_json, parse_nrm_csv, parse_nrm_json
from broker.types import AgencyId
from tests.unit.adapter_roundtrip import canonical, delivered
from tests.unit.adapter_samples import sample

POLICE = PoliceAdapter()


@pytest.mark.parametrize("name", ["police/nrm-referral.json", "police/nrm-referral-child.json"])
def test_nrm_referral_round_trip_keeps_every_field(name: str) -> None:
    event = canonical(name, "nrm-json")
    assert event.event_type == "referral.nrm"
    rendered = POLICE.render(delivered(event), "nrm-json")
    assert parse_nrm_json(rendered) == parse_nrm_json(sample(name))


def test_dtn_round_trip_keeps_every_field_and_stays_anonymous() -> None:
    event = canonical("police/dtn-report.json", "dtn-json")
    assert event.event_type == "referral.dtn"
    rendered = POLICE.render(delivered(event), "dtn-json")
    assert parse_dtn_json(rendered) == parse_dtn_json(sample("police/dtn-report.json"))


@pytest.mark.parametrize(
    ("name", "event_type"),
    [
        ("police/case-arrest.json", "case.arrest"),
        ("police/case-charge.json", "case.charge"),
        ("police/case-file-submitted.json", "case.file_submitted"),
    ],
)
def test_case_update_round_trip_keeps_every_field(name: str, event_type: str) -> None:
    event = canonical(name, "case-json")
    assert (event.event_type, event.subject) == (event_type, "01MP1234526")
    rendered = POLICE.render(delivered(event), "case-json")
    assert parse_case_json(rendered) == parse_case_json(sample(name))


def test_every_csv_row_round_trips_as_nrm_json() -> None:
    for item in parse_nrm_csv(sample("police/referrals.csv")).accepted:
        event = POLICE.to_canonical(item.document)
        assert parse_nrm_json(POLICE.render(delivered(event), "nrm-json")) == item.document


def test_referral_markings_come_from_its_handling() -> None:
    event = canonical("police/nrm-referral.json", "nrm-json")
    assert (event.markings["classification"], event.markings["tlp"]) == (
        "OFFICIAL_SENSITIVE",
        "AMBER",
    )
    assert "handling" not in event.payload


def test_republished_document_gets_the_same_event_id() -> None:
    first = canonical("police/nrm-referral.json", "nrm-json")
    again = canonical("police/nrm-referral.json", "nrm-json")
    agency = AgencyId("met-police")
    assert derive_event_id(agency, first) == derive_event_id(agency, again)


def test_changed_document_or_other_agency_gets_another_event_id() -> None:
    event = canonical("police/nrm-referral.json", "nrm-json")
    edited = sample("police/nrm-referral.json").replace(b"Testtown", b"Testville")
    changed = POLICE.to_canonical(POLICE.parse(edited, "nrm-json").accepted[0].document)
    agency = AgencyId("met-police")
    assert derive_event_id(agency, changed) != derive_event_id(agency, event)
    assert derive_event_id(AgencyId("gmp"), event) != derive_event_id(agency, event)
