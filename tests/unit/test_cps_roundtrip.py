"""CPS case XML survives native → canonical event → native, and police updates render as it."""

from __future__ import annotations

import pytest

from adapters.cps.adapter import CpsAdapter
from adapters.cps.parse import parse_case_xml
from adapters.police.parse import parse_case_json
from broker.errors import InputValidationError
from tests.unit.adapter_roundtrip import canonical, delivered
from tests.unit.adapter_samples import sample

CPS = CpsAdapter()


@pytest.mark.parametrize(
    ("name", "event_type"),
    [
        ("cps/charging-decision.xml", "case.charging_decision"),
        ("cps/hearing-outcome.xml", "case.hearing_outcome"),
    ],
)
def test_cps_xml_round_trip_keeps_every_field(name: str, event_type: str) -> None:
    event = canonical(name, "cps-xml")
    assert event.event_type == event_type
    assert event.subject == "01MP1234526"
    assert parse_case_xml(CPS.render(delivered(event), "cps-xml")) == parse_case_xml(sample(name))


@pytest.mark.parametrize(
    "name",
    ["police/case-arrest.json", "police/case-charge.json", "police/case-file-submitted.json"],
)
def test_police_case_update_renders_as_cps_xml_with_every_field(name: str) -> None:
    event = canonical(name, "case-json")
    xml = CPS.render(delivered(event), "cps-xml")
    assert parse_case_xml(xml) == parse_case_json(sample(name))


def test_rendered_xml_carries_urn_offence_and_monitoring_codes() -> None:
    xml = CPS.render(delivered(canonical("police/case-charge.json", "case-json")), "cps-xml")
    for fragment in (b"<URN>01MP1234526</URN>", b"<OffenceCode>MS15003C</OffenceCode>",
                     b"<Code>HUTR</Code>", b"<HearingDate>2026-11-24</HearingDate>"):  # fmt: skip
        assert fragment in xml


def test_withheld_fields_are_left_out_of_the_xml() -> None:
    event = delivered(canonical("police/case-charge.json", "case-json"))
    payload = dict(event.payload)
    payload["officer_in_case"] = None
    xml = CPS.render(type(event)(**{**event.__dict__, "payload": payload}), "cps-xml")
    assert b"OfficerInCase" not in xml


def test_a_referral_is_not_rendered_as_cps_xml() -> None:
    event = delivered(canonical("police/nrm-referral.json", "nrm-json"))
    with pytest.raises(InputValidationError):
        CPS.render(event, "cps-xml")
