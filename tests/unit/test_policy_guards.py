"""Each statutory guard: a test that fails if the guard is removed."""

from __future__ import annotations

from datetime import UTC, datetime

from broker.events.fields import schema_fields
from broker.policy.decide import decide
from broker.types import Outcome
from tests.unit.policy_support import (
    IDENTITY_ONLY_SCHEMA,
    NOW,
    facts,
    grant_all,
    make,
    overseas,
    partner,
    payload,
    safeguarded,
)

IDENTITY_PATHS = {"victim.forename", "victim.surname", "victim.aliases", "victim.date_of_birth"}


def test_secret_event_is_withheld_from_partner_cleared_only_for_official_sensitive() -> None:
    policy = make([partner("met"), partner("nca", clearance="SECRET")], [grant_all(["met", "nca"])])
    d = decide(policy, facts(source="other", classification="SECRET"), NOW)
    assert d.for_partner("met").outcome is Outcome.WITHHOLD
    assert d.for_partner("met").decided_by == "guard:clearance"
    assert d.for_partner("met").rule == "grant-all"
    assert d.for_partner("nca").outcome is Outcome.DELIVER


def test_adult_victim_without_consent_is_delivered_without_identity_fields() -> None:
    policy = make([partner("met")], [grant_all(["met"])])
    d = decide(policy, facts(source="other", body=payload(consent=False)), NOW).for_partner("met")
    assert d.outcome is Outcome.DELIVER
    assert "guard:msa-s52" in d.guards
    assert set(d.removes) >= IDENTITY_PATHS
    assert d.view == "full+no-identity:victim"


def test_consenting_adult_is_delivered_with_identity_in_the_rule_view() -> None:
    policy = make([partner("met")], [grant_all(["met"])])
    d = decide(policy, facts(source="other"), NOW).for_partner("met")
    assert d.outcome is Outcome.DELIVER
    assert d.guards == ()
    assert d.removes == ()


def test_adult_victim_whose_consent_is_not_recorded_is_not_identifiable() -> None:
    policy = make([partner("met")], [grant_all(["met"])])
    d = decide(policy, facts(source="other", body=payload(consent=None)), NOW).for_partner("met")
    assert "guard:msa-s52" in d.guards
    assert set(d.removes) >= IDENTITY_PATHS


def test_child_victim_is_identifiable_without_consent() -> None:
    policy = make([partner("met")], [grant_all(["met"])])
    body = payload(age_group="child", consent=None)
    d = decide(policy, facts(source="other", body=body), NOW).for_partner("met")
    assert d.outcome is Outcome.DELIVER
    assert "guard:msa-s52" not in d.guards


def test_duty_to_notify_for_adult_is_never_identifiable() -> None:
    policy = make([partner("met")], [grant_all(["met"])])
    body = payload(consent=None)
    d = decide(policy, facts("referral.dtn", source="other", body=body), NOW).for_partner("met")
    assert "guard:msa-s52" in d.guards
    assert set(d.removes) >= IDENTITY_PATHS


def test_identity_only_record_of_non_consenting_adult_is_withheld() -> None:
    fields = schema_fields(IDENTITY_ONLY_SCHEMA)
    body = {"case_ref": "C-1", "age_group": "adult", "passport_check_digit": 7}
    policy = make([partner("met")], [grant_all(["met"])])
    d = decide(policy, facts(source="other", body=body, fields=fields), NOW).for_partner("met")
    assert d.outcome is Outcome.WITHHOLD
    assert d.decided_by == "guard:msa-s52"


def test_siena_h2_reaches_only_the_originators_intended_recipients() -> None:
    policy = make([partner("met"), partner("nca")], [grant_all(["met", "nca"])])
    f = facts("alert.inbound", source="other", siena_handling="H2", intended_recipients=["nca"])
    d = decide(policy, f, NOW)
    assert d.for_partner("nca").outcome is Outcome.DELIVER
    assert d.for_partner("met").outcome is Outcome.WITHHOLD
    assert d.for_partner("met").decided_by == "guard:siena-h2"


def test_siena_h1_is_withheld_from_prosecutors() -> None:
    policy = make([partner("cps", kind="prosecutor"), partner("met")], [grant_all(["cps", "met"])])
    d = decide(policy, facts("alert.inbound", source="other", siena_handling="H1"), NOW)
    assert d.for_partner("cps").decided_by == "guard:siena-h1"
    assert d.for_partner("cps").outcome is Outcome.WITHHOLD
    assert d.for_partner("met").outcome is Outcome.DELIVER


def test_siena_h1_is_withheld_from_courts() -> None:
    policy = make([partner("court", kind="court")], [grant_all(["court"])])
    d = decide(policy, facts("alert.inbound", source="other", siena_handling="H1"), NOW)
    assert d.for_partner("court").decided_by == "guard:siena-h1"


def test_siena_h3_is_held_for_a_human_decision() -> None:
    policy = make([partner("met")], [grant_all(["met"])])
    f = facts("alert.inbound", source="other", siena_handling="H3", siena_restrictions="ask first")
    d = decide(policy, f, NOW).for_partner("met")
    assert d.outcome is Outcome.HELD
    assert d.decided_by == "guard:hold-h3"
    assert "ask first" in d.reason


def test_3x5x2_handling_code_c_is_held_for_a_human_decision() -> None:
    policy = make([partner("met")], [grant_all(["met"])])
    grading = {"source": "SOURCE_1", "intelligence": "A", "handling": "C"}
    d = decide(policy, facts(source="other", grading=grading), NOW).for_partner("met")
    assert d.outcome is Outcome.HELD
    assert d.decided_by == "guard:hold-3x5x2-C"


def test_3x5x2_handling_code_p_is_delivered() -> None:
    policy = make([partner("met")], [grant_all(["met"])])
    grading = {"source": "SOURCE_1", "intelligence": "A", "handling": "P"}
    d = decide(policy, facts(source="other", grading=grading), NOW).for_partner("met")
    assert d.outcome is Outcome.DELIVER


def test_held_applies_only_where_the_rules_would_deliver() -> None:
    policy = make([partner("met"), partner("nca")], [grant_all(["met"])])
    d = decide(policy, facts(source="other", siena_handling="H3"), NOW)
    assert d.for_partner("nca").outcome is Outcome.WITHHOLD
    assert d.for_partner("nca").decided_by == "default-deny"


def test_tlp_red_goes_only_to_named_recipients() -> None:
    policy = make([partner("met"), partner("nca")], [grant_all(["met", "nca"])])
    d = decide(policy, facts(source="other", tlp="RED", intended_recipients=["met"]), NOW)
    assert d.for_partner("met").outcome is Outcome.DELIVER
    assert d.for_partner("nca").decided_by == "guard:tlp-red"


def test_tlp_amber_strict_stays_within_the_recipient_organisation() -> None:
    partners = [
        partner("nca"),
        partner("nca-ilo-desk", organisation="nca"),
        partner("met"),
    ]
    policy = make(partners, [grant_all(["nca", "nca-ilo-desk", "met"])])
    d = decide(policy, facts(source="other", tlp="AMBER_STRICT", intended_recipients=["nca"]), NOW)
    assert d.for_partner("nca").outcome is Outcome.DELIVER
    assert d.for_partner("nca-ilo-desk").outcome is Outcome.DELIVER
    assert d.for_partner("met").decided_by == "guard:tlp-amber-strict"


def test_tlp_amber_strict_without_named_recipients_stays_in_the_source_organisation() -> None:
    partners = [partner("met"), partner("met-intel", organisation="met"), partner("nca")]
    policy = make(partners, [grant_all(["met-intel", "nca"])])
    d = decide(policy, facts(source="met", tlp="AMBER_STRICT"), NOW)
    assert d.for_partner("met-intel").outcome is Outcome.DELIVER
    assert d.for_partner("nca").decided_by == "guard:tlp-amber-strict"


def test_transfer_abroad_without_a_basis_is_withheld() -> None:
    ilo = overseas("ilo-xx", "BR")
    del ilo["transfer"]
    policy = make([ilo], [grant_all(["ilo-xx"], view="no-identity")])
    d = decide(policy, facts("alert.outbound", source="nca"), NOW).for_partner("ilo-xx")
    assert d.outcome is Outcome.WITHHOLD
    assert d.decided_by == "guard:dpa-s73"


def test_transfer_to_a_body_that_is_not_a_relevant_authority_is_withheld() -> None:
    ilo = overseas("ilo-xx", "BR", transfer={"basis": "adequacy", "relevant_authority": False})
    policy = make([ilo], [grant_all(["ilo-xx"], view="no-identity")])
    d = decide(policy, facts("alert.outbound", source="nca"), NOW).for_partner("ilo-xx")
    assert d.decided_by == "guard:dpa-s73"


def test_transfer_abroad_without_an_agreement_is_withheld() -> None:
    ilo = overseas("ilo-xx", "BR")
    del ilo["agreement"]
    policy = make([ilo], [grant_all(["ilo-xx"], view="no-identity")])
    d = decide(policy, facts("alert.outbound", source="nca"), NOW).for_partner("ilo-xx")
    assert d.decided_by == "guard:agreement"


def test_delivery_under_an_expired_agreement_is_withheld() -> None:
    met = partner(
        "met", agreement={"id": "ISA-1", "purposes": ["investigation"], "expires": "2026-11-27"}
    )
    policy = make([met], [grant_all(["met"])])
    d = decide(policy, facts(source="other"), NOW).for_partner("met")
    assert d.decided_by == "guard:agreement-expired"


def test_agreement_is_live_on_its_expiry_day() -> None:
    met = partner(
        "met", agreement={"id": "ISA-1", "purposes": ["investigation"], "expires": "2026-11-28"}
    )
    policy = make([met], [grant_all(["met"])])
    assert decide(policy, facts(source="other"), NOW).for_partner("met").outcome is Outcome.DELIVER


def test_eu_origin_data_goes_abroad_only_where_the_origin_state_authorised() -> None:
    partners = [safeguarded("ilo-br", "BR"), safeguarded("ilo-us", "US"), partner("met")]
    rules = [grant_all(["ilo-br", "ilo-us", "met"], view="no-identity")]
    policy = make(partners, rules)
    f = facts(
        "alert.outbound",
        source="nca",
        origin_country="NL",
        origin_authorised_recipients=["ilo-br"],
    )
    d = decide(policy, f, NOW)
    assert d.for_partner("ilo-br").outcome is Outcome.DELIVER
    assert d.for_partner("ilo-us").decided_by == "guard:eu-origin"
    assert d.for_partner("met").outcome is Outcome.DELIVER


def test_victim_identity_does_not_leave_the_uk_when_a_group_grants_it() -> None:
    ilo = overseas("ilo-nl", groups=["abroad"])
    policy = make([ilo], [grant_all(["abroad"], basis="adequacy")])
    d = decide(policy, facts("alert.outbound", source="nca"), NOW).for_partner("ilo-nl")
    assert d.outcome is Outcome.DELIVER
    assert "guard:identity-abroad" in d.guards
    assert set(d.removes) >= IDENTITY_PATHS


def test_victim_identity_does_not_leave_the_uk_without_a_basis_on_the_rule() -> None:
    policy = make([overseas("ilo-nl")], [grant_all(["ilo-nl"])])
    d = decide(policy, facts("alert.outbound", source="nca"), NOW).for_partner("ilo-nl")
    assert "guard:identity-abroad" in d.guards


def test_victim_identity_leaves_the_uk_when_the_rule_names_the_partner_and_the_basis() -> None:
    policy = make([overseas("ilo-nl")], [grant_all(["ilo-nl"], basis="adequacy")])
    d = decide(policy, facts("alert.outbound", source="nca"), NOW).for_partner("ilo-nl")
    assert d.outcome is Outcome.DELIVER
    assert d.guards == ()
    assert d.removes == ()


def test_source_is_not_sent_its_own_event_through_a_group() -> None:
    policy = make([partner("met", groups=["police"])], [grant_all(["police"])])
    d = decide(policy, facts(source="met"), NOW).for_partner("met")
    assert d.outcome is Outcome.WITHHOLD
    assert d.decided_by == "source-loopback"


def test_source_is_not_sent_its_own_event_even_when_a_rule_names_it() -> None:
    policy = make([partner("met")], [grant_all(["met"])])
    d = decide(policy, facts(source="met"), NOW).for_partner("met")
    assert d.decided_by == "source-loopback"


def test_source_receives_its_own_event_when_its_registry_entry_asks_for_it() -> None:
    policy = make([partner("met", receives_own_events=True)], [grant_all(["met"])])
    assert decide(policy, facts(source="met"), NOW).for_partner("met").outcome is Outcome.DELIVER


def test_every_failing_guard_is_listed_and_the_first_decides() -> None:
    policy = make([partner("met")], [grant_all(["met"])])
    f = facts(source="other", classification="SECRET", tlp="RED")
    d = decide(policy, f, NOW).for_partner("met")
    assert d.decided_by == "guard:clearance"
    assert d.guards == ("guard:clearance", "guard:tlp-red")


def test_decisions_depend_on_the_time_given() -> None:
    met = partner(
        "met", agreement={"id": "ISA-1", "purposes": ["investigation"], "expires": "2026-12-31"}
    )
    policy = make([met], [grant_all(["met"])])
    later = datetime(2027, 1, 1, tzinfo=UTC)
    assert decide(policy, facts(source="other"), NOW).for_partner("met").outcome is Outcome.DELIVER
    assert (
        decide(policy, facts(source="other"), later).for_partner("met").outcome is Outcome.WITHHOLD
    )
