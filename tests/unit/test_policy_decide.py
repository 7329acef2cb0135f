"""Rule evaluation: default deny, rule order, subscriptions, groups, transfer basis, version."""

from __future__ import annotations

import hashlib

import yaml

from broker.events.markings import TransferBasis
from broker.policy.decide import decide
from broker.policy.model import parse_policy
from broker.types import Outcome
from tests.unit.policy_support import (
    NOW,
    facts,
    grant_all,
    load,
    make,
    ngo,
    overseas,
    partner,
    payload,
    policy_doc,
)


def test_partner_that_no_rule_names_is_withheld_by_default() -> None:
    policy = make([partner("met"), partner("nca")], [grant_all(["met"])])
    d = decide(policy, facts(source="other"), NOW).for_partner("nca")
    assert d.outcome is Outcome.WITHHOLD
    assert d.decided_by == "default-deny"


def test_policy_without_rules_delivers_nothing() -> None:
    policy = make([partner("met"), partner("nca")], [])
    d = decide(policy, facts(source="other"), NOW)
    assert d.deliveries == ()
    assert {p.decided_by for p in d.partners} == {"default-deny"}


def test_every_partner_in_the_registry_gets_a_decision() -> None:
    policy = make([partner("a"), partner("b"), partner("c")], [grant_all(["b"])])
    d = decide(policy, facts(source="other"), NOW)
    assert [p.partner for p in d.partners] == ["a", "b", "c"]


def test_first_matching_rule_decides_for_a_partner() -> None:
    rules = [
        {"id": "no-labour", "match": {"exploitation_types": ["LABOUR"]}, "deny": {"reason": "x"}},
        grant_all(["met"]),
    ]
    policy = make([partner("met")], rules)
    d = decide(policy, facts(source="other"), NOW).for_partner("met")
    assert d.outcome is Outcome.WITHHOLD
    assert d.decided_by == "no-labour"
    assert d.reason == "x"


def test_rule_that_does_not_match_is_passed_over() -> None:
    rules = [
        {"id": "no-sexual", "match": {"exploitation_types": ["SEXUAL"]}, "deny": {"reason": "x"}},
        grant_all(["met"]),
    ]
    policy = make([partner("met")], rules)
    assert decide(policy, facts(source="other"), NOW).for_partner("met").decided_by == "grant-all"


def test_deny_naming_partners_leaves_the_others_to_later_rules() -> None:
    rules = [
        {"id": "not-nca", "deny": {"reason": "x", "partners": ["nca"]}},
        grant_all(["met", "nca"]),
    ]
    policy = make([partner("met"), partner("nca")], rules)
    d = decide(policy, facts(source="other"), NOW)
    assert d.for_partner("nca").decided_by == "not-nca"
    assert d.for_partner("met").outcome is Outcome.DELIVER


def test_rule_matches_on_classification_ceiling() -> None:
    rule = {
        "id": "low",
        "match": {"max_classification": "OFFICIAL"},
        "deliver": {"to": ["met"], "view": "full"},
    }
    policy = make([partner("met")], [rule])
    assert decide(policy, facts(source="o", classification="OFFICIAL"), NOW).deliveries
    d = decide(policy, facts(source="o", classification="OFFICIAL_SENSITIVE"), NOW)
    assert d.for_partner("met").decided_by == "default-deny"


def test_rule_matches_on_victim_consent_and_age_group() -> None:
    rule = {
        "id": "consenting-adults",
        "match": {"victim_age_groups": ["adult"], "victim_consent": ["yes"]},
        "deliver": {"to": ["ngo"], "view": "full"},
    }
    policy = make([ngo("ngo")], [rule])
    assert decide(policy, facts(source="o"), NOW).deliveries
    d = decide(policy, facts(source="o", body=payload(consent=False)), NOW)
    assert d.for_partner("ngo").decided_by == "default-deny"


def test_group_in_a_rule_reaches_every_member() -> None:
    partners = [partner("met", groups=["police"]), partner("gmp", groups=["police"])]
    policy = make(partners, [grant_all(["police"])])
    assert len(decide(policy, facts(source="other"), NOW).deliveries) == 2


def test_event_type_the_partner_did_not_subscribe_to_is_withheld() -> None:
    cps = partner("cps", kind="prosecutor", subscriptions={"event_types": ["case.charge"]})
    policy = make([cps], [grant_all(["cps"])])
    d = decide(policy, facts("referral.nrm", source="other"), NOW).for_partner("cps")
    assert d.decided_by == "not-subscribed"


def test_liaison_point_country_filter_admits_only_events_involving_its_countries() -> None:
    subs = {"event_types": ["alert.outbound"], "countries": ["VN"]}
    policy = make([overseas("ilo", subscriptions=subs)], [grant_all(["ilo"], view="no-identity")])
    d = decide(policy, facts("alert.outbound", source="nca"), NOW).for_partner("ilo")
    assert d.decided_by == "not-subscribed"
    subs_al = {"event_types": ["alert.outbound"], "countries": ["AL"]}
    policy = make(
        [overseas("ilo", subscriptions=subs_al)], [grant_all(["ilo"], view="no-identity")]
    )
    assert decide(policy, facts("alert.outbound", source="nca"), NOW).deliveries


def test_overseas_delivery_records_its_transfer_basis() -> None:
    policy = make(
        [overseas("ilo-nl"), partner("met")], [grant_all(["ilo-nl", "met"], basis="adequacy")]
    )
    d = decide(policy, facts("alert.outbound", source="nca"), NOW)
    assert d.for_partner("ilo-nl").basis == TransferBasis.ADEQUACY
    assert d.for_partner("met").basis is None


def test_overseas_delivery_without_rule_basis_cites_the_partners_basis() -> None:
    ilo = overseas(
        "ilo",
        transfer={
            "basis": "appropriate_safeguards",
            "relevant_authority": True,
            "instrument": "UK-XX MLA treaty 2019 art. 12",
        },
    )
    policy = make([ilo], [grant_all(["ilo"], view="no-identity")])
    d = decide(policy, facts("alert.outbound", source="nca"), NOW).for_partner("ilo")
    assert d.basis == TransferBasis.APPROPRIATE_SAFEGUARDS


def test_rule_naming_an_unknown_view_withholds() -> None:
    policy = make([partner("met")], [grant_all(["met"], view="nonexistent")])
    d = decide(policy, facts(source="other"), NOW).for_partner("met")
    assert d.outcome is Outcome.WITHHOLD
    assert "unknown view" in d.reason


def test_decision_cites_the_policy_version_digest_of_the_file_bytes() -> None:
    data = yaml.safe_dump(policy_doc([partner("met")], [grant_all(["met"])])).encode()
    policy = parse_policy(data)
    d = decide(policy, facts(source="other"), NOW)
    assert d.policy_version == "sha256:" + hashlib.sha256(data).hexdigest()
    assert d.event_id == "ev-1"


def test_a_changed_policy_file_has_a_different_version() -> None:
    a = load(policy_doc([partner("met")], [grant_all(["met"])]))
    b = load(policy_doc([partner("met")], []))
    assert a.version != b.version
