"""Alerts survive native → canonical → native in both shapes, with handling codes intact."""

from __future__ import annotations

import pytest

from adapters.overseas.adapter import OverseasAdapter
from adapters.overseas.parse import parse_alert_json, parse_alert_xml
from tests.unit.adapter_roundtrip import canonical, delivered
from tests.unit.adapter_samples import sample

OVERSEAS = OverseasAdapter()


def test_inbound_umf_alert_keeps_its_handling_codes_in_the_markings() -> None:
    event = canonical("overseas/alert-inbound.xml", "alert-xml")
    m = event.markings
    assert event.event_type == "alert.inbound"
    assert m["siena_handling"] == "H3"
    assert m["evaluation"] == {"source": "B", "information": "INFO_2"}
    assert (
        m["siena_restrictions"]
        == "Not to be shared with immigration authorities without permission"
    )
    assert (m["classification"], m["tlp"], m["origin_country"]) == (
        "OFFICIAL_SENSITIVE",
        "AMBER",
        "NL",
    )


def test_outbound_alert_has_no_foreign_origin() -> None:
    event = canonical("overseas/diffusion-outbound.json", "alert-json")
    assert event.event_type == "alert.outbound"
    assert event.markings["origin_country"] is None


@pytest.mark.parametrize("fmt", ["alert-xml", "alert-json"])
def test_umf_alert_round_trips_through_either_shape(fmt: str) -> None:
    original = parse_alert_xml(sample("overseas/alert-inbound.xml"))
    rendered = OVERSEAS.render(delivered(canonical("overseas/alert-inbound.xml", "alert-xml")), fmt)
    parse = parse_alert_xml if fmt == "alert-xml" else parse_alert_json
    assert parse(rendered) == original


@pytest.mark.parametrize(
    "name", ["overseas/diffusion-inbound.json", "overseas/diffusion-outbound.json"]
)
@pytest.mark.parametrize("fmt", ["alert-xml", "alert-json"])
def test_diffusion_round_trips_through_either_shape(name: str, fmt: str) -> None:
    rendered = OVERSEAS.render(delivered(canonical(name, "alert-json")), fmt)
    parse = parse_alert_xml if fmt == "alert-xml" else parse_alert_json
    assert parse(rendered) == parse_alert_json(sample(name))


def test_rendered_alert_shows_the_handling_the_header_carries() -> None:
    event = delivered(canonical("overseas/diffusion-inbound.json", "alert-json"))
    stricter = {**event.markings, "tlp": "RED"}
    rendered = OVERSEAS.render(
        type(event)(**{**event.__dict__, "markings": stricter}), "alert-json"
    )
    assert parse_alert_json(rendered).handling.tlp == "RED"
