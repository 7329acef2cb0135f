"""Overseas alerts: UMF-like XML and diffusion JSON are read safely with their handling codes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.overseas.parse import parse_alert_json, parse_alert_xml
from broker.errors import InputValidationError, UnsafeXmlError
from tests.unit.adapter_samples import sample


def test_umf_alert_keeps_siena_handling_and_evaluation() -> None:
    alert = parse_alert_xml(sample("overseas/alert-inbound.xml"))
    h = alert.handling
    assert (h.siena_handling, h.source_evaluation, h.information_evaluation) == ("H3", "B", "2")
    assert h.siena_restrictions is not None
    assert alert.event_type == "alert.inbound"


def test_diffusion_json_is_read_with_person_status() -> None:
    alert = parse_alert_json(sample("overseas/diffusion-inbound.json"))
    assert alert.persons[0].status == "missing_person"
    assert alert.handling.siena_handling == "H1"


def test_alert_sent_from_the_uk_is_outbound() -> None:
    assert parse_alert_json(sample("overseas/diffusion-outbound.json")).event_type == (
        "alert.outbound"
    )


def test_every_bad_handling_field_is_named() -> None:
    with pytest.raises(InputValidationError) as exc:
        parse_alert_json(sample("overseas/alert.bad.json"))
    where = {p.location for p in exc.value.problems}
    assert {
        "diffusion.sent_at",
        "diffusion.sender_country",
        "diffusion.recipient_countries",
        "diffusion.handling.classification",
        "diffusion.handling.source_evaluation",
        "diffusion.handling.information_evaluation",
    } <= where


def test_h3_without_its_restriction_text_is_refused() -> None:
    doc = json.loads(sample("overseas/diffusion-inbound.json"))
    doc["diffusion"]["handling"]["siena_handling"] = "H3"
    with pytest.raises(InputValidationError, match="siena_restrictions"):
        parse_alert_json(json.dumps(doc).encode())


def test_diffusion_must_be_the_only_top_level_key() -> None:
    doc = json.loads(sample("overseas/diffusion-inbound.json"))
    doc["extra"] = 1
    with pytest.raises(InputValidationError, match="diffusion"):
        parse_alert_json(json.dumps(doc).encode())


def test_umf_xml_problem_is_named_by_its_xml_path() -> None:
    xml = sample("overseas/alert-inbound.xml").replace(
        b"<SIENAHandling>H3</SIENAHandling>", b"<SIENAHandling>H9</SIENAHandling>"
    )
    with pytest.raises(InputValidationError) as exc:
        parse_alert_xml(xml)
    assert [p.location for p in exc.value.problems] == ["Handling/SIENAHandling"]


def test_umf_xml_with_external_entity_is_refused() -> None:
    xml = (
        b'<?xml version="1.0"?><!DOCTYPE UMFMessage [<!ENTITY x SYSTEM "file:///etc/hostname">]>'
        b"<UMFMessage><Subject>&x;</Subject></UMFMessage>"
    )
    with pytest.raises(UnsafeXmlError):
        parse_alert_xml(xml)


def test_umf_xml_with_entity_expansion_is_refused() -> None:
    xml = (
        b'<!DOCTYPE m [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b"<UMFMessage><Subject>&b;</Subject></UMFMessage>"
    )
    with pytest.raises(UnsafeXmlError):
        parse_alert_xml(xml)


def test_umf_xml_with_external_dtd_is_refused() -> None:
    xml = b'<!DOCTYPE UMFMessage SYSTEM "https://example.invalid/umf.dtd"><UMFMessage/>'
    with pytest.raises(UnsafeXmlError):
        parse_alert_xml(xml)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_alert_parsers_only_raise_input_validation_errors_on_arbitrary_bytes(data: bytes) -> None:
    for parser in (parse_alert_xml, parse_alert_json):
        try:
            parser(data)
        except InputValidationError:
            continue
