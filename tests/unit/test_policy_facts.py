"""Facts taken from a header and payload: markings, victim, countries, identity."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import pytest

from broker.errors import PolicyDecisionError
from broker.events.markings import AgeGroup, Classification, Consent, Tlp
from broker.policy.facts import extract_facts
from tests.unit.policy_support import FIELDS, facts, header, payload


class _Tlp(Enum):
    AMBER_STRICT = "AMBER_STRICT"


@dataclass(frozen=True)
class _Markings:
    classification: str = "SECRET"
    tlp: _Tlp = _Tlp.AMBER_STRICT
    siena_handling: str | None = None
    siena_restrictions: str | None = None
    grading: None = None
    evaluation: None = None
    intended_recipients: list[str] = field(default_factory=lambda: ["nca"])
    origin_country: str | None = "nl"
    origin_authorised_recipients: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Header:
    event_id: str = "e-9"
    event_type: str = "alert.inbound"
    source: str = "ilo-nl"
    subject: str = "A-1"
    markings: _Markings = field(default_factory=_Markings)


def test_facts_read_a_dataclass_header_with_enum_markings() -> None:
    f = extract_facts(_Header(), payload(), FIELDS)
    assert f.classification is Classification.SECRET
    assert f.tlp is Tlp.AMBER_STRICT
    assert f.intended_recipients == {"nca"}
    assert f.origin_country == "NL"
    assert "NL" in f.countries


def test_facts_read_victim_age_group_and_consent() -> None:
    f = facts()
    assert f.victim_age_group is AgeGroup.ADULT
    assert f.victim_consent is Consent.YES
    assert not f.adult_without_consent


def test_facts_list_identity_paths_that_hold_values() -> None:
    f = facts(body=payload(surname=None))
    assert "victim.forename" in f.identity_paths
    assert "victim.surname" not in f.identity_paths


def test_unknown_classification_is_a_decision_error() -> None:
    with pytest.raises(PolicyDecisionError, match=r"markings\.classification"):
        extract_facts(header(classification="RESTRICTED"), payload(), FIELDS)


def test_missing_event_type_is_a_decision_error() -> None:
    h = header()
    del h["event_type"]
    with pytest.raises(PolicyDecisionError, match=r"header\.event_type"):
        extract_facts(h, payload(), FIELDS)


def test_age_and_consent_are_read_from_nrm_form_groups() -> None:
    body = {
        "age": {"now": "adult", "during_exploitation": "child"},
        "consent": {"wants_nrm": False},
    }
    f = extract_facts(header(), body, ())
    assert f.victim_age_group is AgeGroup.ADULT
    assert f.victim_consent is Consent.NO
    assert f.adult_without_consent


def test_exploitation_flags_become_exploitation_types() -> None:
    body = {"exploitation": {"forced_to_work_for_nothing": True, "wages_taken": False}}
    assert extract_facts(header(), body, ()).exploitation_types == {"FORCED_TO_WORK_FOR_NOTHING"}
