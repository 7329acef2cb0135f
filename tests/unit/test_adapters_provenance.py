"""Rendered documents say who sent them, which event, when decided, and what was withheld."""

from __future__ import annotations

import csv
import dataclasses
import io
import json

import defusedxml.ElementTree as SafeET

from adapters.cps.parse import parse_case_xml
from adapters.native.documents import load_json_object
from adapters.native.provenance import attach, provenance_of, withheld_sentences
from adapters.protocol import DeliveredEvent
from tests.unit.adapter_samples import sample

EVENT = DeliveredEvent(
    event_id="ev-9",
    event_type="case.charge",
    source="met-police",
    subject="01MP1234526",
    markings={"classification": "OFFICIAL_SENSITIVE", "tlp": "AMBER", "grading": {"handling": "P"}},
    payload={},
    provenance={
        "recipient": "cps",
        "view": "full+no-identity:victims[1]",
        "decided_at": "2026-11-28T12:00:00+00:00",
    },
)


def test_provenance_names_sender_event_decision_time_and_markings() -> None:
    p = provenance_of(EVENT)
    assert p["sending_agency"] == "met-police"
    assert p["event_id"] == "ev-9"
    assert p["decided_at"] == "2026-11-28T12:00:00+00:00"
    assert p["markings"] == {
        "classification": "OFFICIAL_SENSITIVE",
        "tlp": "AMBER",
        "handling_code": "P",
    }


def test_each_protected_person_gets_a_plain_sentence_with_the_law() -> None:
    sentences = withheld_sentences("full+no-identity:victims[1],victims[3]")
    assert any(s.startswith("victims[1]:") and "MSA 2015 s.52(3)" in s for s in sentences)
    assert any(s.startswith("victims[3]:") for s in sentences)


def test_a_transfer_abroad_without_basis_says_identity_was_withheld_and_why() -> None:
    assert any("DPA 2018 s.73" in s for s in withheld_sentences("no-identity+no-identity"))


def test_a_view_no_guard_narrowed_explains_nothing() -> None:
    assert withheld_sentences(None) == []
    assert withheld_sentences("support") == []


def test_json_documents_carry_a_provenance_member() -> None:
    data, sidecar = attach(EVENT, "json", b'{"urn": "x"}')
    doc = json.loads(data)
    assert doc["urn"] == "x"
    assert doc["provenance"]["event_id"] == "ev-9"
    assert sidecar is None


def test_xml_documents_carry_a_provenance_element_in_the_root() -> None:
    data, sidecar = attach(EVENT, "xml", b"<CaseUpdate><Urn>x</Urn></CaseUpdate>\n")
    root = SafeET.fromstring(data)
    prov = root.find("Provenance")
    assert prov is not None
    assert prov.findtext("SendingAgency") == "met-police"
    assert prov.findtext("EventId") == "ev-9"
    assert any("victims[1]" in (i.text or "") for i in prov.iter("Item"))
    assert sidecar is None


def test_csv_documents_get_a_provenance_sidecar() -> None:
    data, sidecar = attach(EVENT, "csv", b"a,b\n1,2\n")
    assert data == b"a,b\n1,2\n"
    assert sidecar is not None
    rows = list(csv.reader(io.StringIO(sidecar.decode())))
    assert ["sending_agency", "met-police"] in rows
    assert ["event_id", "ev-9"] in rows


def test_a_rendered_json_document_read_back_drops_the_earlier_provenance() -> None:
    data, _ = attach(EVENT, "json", b'{"urn": "x"}')
    assert "provenance" not in load_json_object(data, "doc")


def test_a_rendered_cps_document_still_parses() -> None:
    data, _ = attach(EVENT, "xml", sample("cps/charging-decision.xml"))
    assert b"<Provenance>" in data
    assert parse_case_xml(data).urn


def test_a_delivery_carrying_its_rule_basis_and_conditions_renders_them() -> None:
    event = dataclasses.replace(
        EVENT,
        provenance={
            **(EVENT.provenance or {}),
            "rule": "case-updates-to-cps",
            "agreement": "ISA-CPS-2025-02",
            "purposes": ["prosecution"],
            "lawful_basis": "law_enforcement",
            "onward_sharing": "within UK policing only",
            "retention": "CPS case file retention schedule",
            "withheld": ["victims[1]: identity withheld — MSA 2015 s.52(3)"],
        },
    )
    p = provenance_of(event)
    assert (p["rule"], p["agreement"], p["lawful_basis"]) == (
        "case-updates-to-cps",
        "ISA-CPS-2025-02",
        "law_enforcement",
    )
    assert p["purposes"] == ["prosecution"]
    assert p["onward_sharing"] == "within UK policing only"
    assert p["withheld"] == ["victims[1]: identity withheld — MSA 2015 s.52(3)"]
    data, _ = attach(event, "xml", b"<CaseUpdate><Urn>x</Urn></CaseUpdate>")
    assert b"case-updates-to-cps" in data
    assert b"law_enforcement" in data
