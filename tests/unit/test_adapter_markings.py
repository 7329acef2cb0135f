"""Every adapter carries the markings its native format has, and the overseas adapter sets the
origin of what it receives from abroad."""

from __future__ import annotations

import json
from typing import Any

import pytest

from adapters.cps.parse import parse_case_xml
from adapters.cps.render import render_case_xml
from adapters.police.parse import parse_case_json
from adapters.protocol import CanonicalEvent
from adapters.registry import parser_for
from broker.errors import InputValidationError
from tests.unit.adapter_roundtrip import canonical
from tests.unit.adapter_samples import sample

MARKED: dict[str, Any] = {
    "classification": "OFFICIAL_SENSITIVE",
    "tlp": "RED",
    "intended_recipients": ["nca"],
    "grading": {"source": "2", "intelligence": "B", "handling": "C"},
    "siena_handling": "H1",
    "siena_restrictions": "ask the provider before court use",
    "origin_country": "EL",
    "origin_authorised_recipients": ["cps"],
}


def _police_charge(handling: dict[str, Any]) -> bytes:
    doc = json.loads(sample("police/case-charge.json"))
    doc["handling"] = handling
    return json.dumps(doc).encode()


def _canonical(data: bytes, fmt: str) -> CanonicalEvent:
    adapter = parser_for(fmt)
    [accepted] = adapter.parse(data, fmt).accepted
    return adapter.to_canonical(accepted.document)


def test_police_input_carries_3x5x2_siena_tlp_origin_and_authorised_recipients() -> None:
    m = _canonical(_police_charge(MARKED), "case-json").markings
    assert m["grading"] == {"source": "SOURCE_2", "intelligence": "B", "handling": "C"}
    assert (m["siena_handling"], m["siena_restrictions"]) == ("H1", MARKED["siena_restrictions"])
    assert m["tlp"] == "RED"
    assert m["origin_country"] == "GR"  # EL normalised to ISO
    assert m["origin_authorised_recipients"] == ["cps"]
    assert m["intended_recipients"] == ["nca"]


def test_cps_xml_carries_the_same_markings_through_a_round_trip() -> None:
    doc = parse_case_json(_police_charge(MARKED))
    assert parse_case_xml(render_case_xml(doc)).handling == doc.handling


def test_unknown_origin_country_is_refused_by_the_adapter() -> None:
    bad = _police_charge({**MARKED, "origin_country": "XX"})
    with pytest.raises(InputValidationError, match="origin_country"):
        parser_for("case-json").parse(bad, "case-json")


@pytest.mark.parametrize("value", ["", "Q"])
def test_unknown_3x5x2_handling_is_refused_by_the_adapter(value: str) -> None:
    grading = {"source": "1", "intelligence": "A", "handling": value}
    bad = _police_charge({**MARKED, "grading": grading})
    with pytest.raises(InputValidationError, match=r"grading\.handling"):
        parser_for("case-json").parse(bad, "case-json")


def test_overseas_adapter_sets_origin_on_what_it_receives_from_abroad() -> None:
    event = canonical("overseas/alert-inbound.xml", "alert-xml")
    assert event.markings["origin_country"] == "NL"


def test_outbound_alert_carries_the_origin_of_data_it_forwards() -> None:
    doc = json.loads(sample("overseas/diffusion-outbound.json"))
    doc["diffusion"]["handling"]["origin_country"] = "DE"
    doc["diffusion"]["handling"]["origin_authorised_recipients"] = ["ilo-nl"]
    m = _canonical(json.dumps(doc).encode(), "alert-json").markings
    assert (m["origin_country"], m["origin_authorised_recipients"]) == ("DE", ["ilo-nl"])
