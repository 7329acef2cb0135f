"""Every disclosure lawful and explained: agreements, lawful bases, transfers abroad, SIENA."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from broker.errors import PolicyDecisionError, PolicyError
from broker.events.markings import (
    Classification,
    GradingHandling,
    PartnerKind,
    SienaHandling,
    Tlp,
    TransferBasis,
)
from broker.policy.decide import decide
from broker.policy.lawful import (
    COMPETENT_AUTHORITY_KINDS,
    ProcessingBasis,
    Purpose,
    adequacy_list,
)
from broker.types import Outcome
from tests.unit.policy_support import (
    NOW,
    facts,
    grant_all,
    make,
    ngo,
    overseas,
    partner,
    payload,
    safeguarded,
)


def _agreement(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": "ISA-1", "purposes": ["investigation"], "expires": "2026-06-30"}
    base.update(fields)
    return base


# --- agreements -----------------------------------------------------------------------------


def test_uk_partner_without_an_agreement_is_withheld_with_that_reason() -> None:
    met = partner("met")
    del met["agreement"]
    d = decide(make([met], [grant_all(["met"])]), facts(source="o"), NOW).for_partner("met")
    assert d.outcome is Outcome.WITHHOLD
    assert d.decided_by == "guard:agreement"
    assert d.rule == "grant-all"
    assert "no information-sharing agreement" in d.reason


def test_agreement_ending_today_is_not_honoured_at_half_past_midnight_uk_time_tomorrow() -> None:
    # 23:30 UTC on 30 June is 00:30 BST on 1 July: the UTC date is still the expiry day.
    policy = make([partner("met", agreement=_agreement())], [grant_all(["met"])])
    late = datetime(2026, 6, 30, 23, 30, tzinfo=UTC)
    d = decide(policy, facts(source="o"), late).for_partner("met")
    assert d.decided_by == "guard:agreement-expired"


def test_agreement_is_honoured_until_midnight_uk_time_on_its_last_day() -> None:
    policy = make([partner("met", agreement=_agreement())], [grant_all(["met"])])
    last = datetime(2026, 6, 30, 22, 59, tzinfo=UTC)  # 23:59 BST
    assert decide(policy, facts(source="o"), last).for_partner("met").outcome is Outcome.DELIVER


def test_agreement_not_yet_started_on_the_uk_date_is_withheld() -> None:
    a = _agreement(starts="2026-07-01", expires="2027-01-01")
    policy = make([partner("met", agreement=a)], [grant_all(["met"])])
    before = datetime(2026, 6, 30, 22, 59, tzinfo=UTC)  # 23:59 BST on 30 June
    d = decide(policy, facts(source="o"), before).for_partner("met")
    assert d.decided_by == "guard:agreement-expired"
    assert "starts on 2026-07-01" in d.reason
    after = datetime(2026, 6, 30, 23, 0, tzinfo=UTC)  # 00:00 BST on 1 July
    assert decide(policy, facts(source="o"), after).for_partner("met").outcome is Outcome.DELIVER


def test_event_type_outside_the_agreement_is_withheld() -> None:
    a = _agreement(event_types=["case.charge"], expires="2030-01-01")
    policy = make([partner("met", agreement=a)], [grant_all(["met"])])
    d = decide(policy, facts("referral.nrm", source="o"), NOW).for_partner("met")
    assert d.decided_by == "guard:agreement"
    assert "does not cover referral.nrm" in d.reason


def test_view_outside_the_agreement_is_withheld() -> None:
    a = _agreement(views=["no-identity"], expires="2030-01-01")
    policy = make([partner("met", agreement=a)], [grant_all(["met"], view="full")])
    d = decide(policy, facts(source="o"), NOW).for_partner("met")
    assert d.decided_by == "guard:agreement"
    assert "view 'full'" in d.reason


def test_agreement_that_starts_after_it_expires_is_refused_on_load() -> None:
    a = _agreement(starts="2027-01-01", expires="2026-01-01")
    with pytest.raises(PolicyError, match="starts after it expires"):
        make([partner("met", agreement=a)], [])


# --- lawful basis ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind", sorted(k.value for k in COMPETENT_AUTHORITY_KINDS - {"liaison_point"})
)
def test_uk_law_enforcement_delivery_rests_on_part_3_for_the_agreements_purposes(
    kind: str,
) -> None:
    policy = make([partner("p", kind=kind)], [grant_all(["p"])])
    d = decide(policy, facts(source="o"), NOW).for_partner("p")
    assert d.outcome is Outcome.DELIVER
    assert d.lawful_basis is ProcessingBasis.LAW_ENFORCEMENT
    assert d.agreement == "ISA-p"
    assert d.purposes == (Purpose.PREVENTION_DETECTION,)
    assert d.transfer is None


def test_support_provider_delivery_rests_on_the_basis_its_agreement_names() -> None:
    policy = make([ngo("sa")], [grant_all(["sa"])])
    d = decide(policy, facts(source="o", body=payload(consent=True)), NOW).for_partner("sa")
    assert d.outcome is Outcome.DELIVER
    assert d.lawful_basis is ProcessingBasis.CONSENT
    assert d.purposes == (Purpose.VICTIM_SUPPORT,)


def test_support_provider_whose_agreement_names_no_basis_is_withheld() -> None:
    a = {"id": "VCC", "purposes": ["victim_support"], "expires": "2030-01-01"}
    policy = make([partner("sa", kind="ngo", agreement=a)], [grant_all(["sa"])])
    d = decide(policy, facts(source="o", body=payload(consent=True)), NOW).for_partner("sa")
    assert d.decided_by == "guard:agreement"
    assert "names no lawful basis" in d.reason


def test_consent_based_delivery_without_recorded_consent_is_withheld() -> None:
    policy = make([ngo("sa")], [grant_all(["sa"])])
    d = decide(policy, facts(source="o", body=payload(consent=False)), NOW).for_partner("sa")
    assert d.decided_by == "guard:agreement"
    assert "rests on consent" in d.reason


def test_ngo_agreement_claiming_law_enforcement_processing_is_refused_on_load() -> None:
    a = {
        "id": "V",
        "purposes": ["victim_support"],
        "basis": "law_enforcement",
        "expires": "2030-01-01",
    }
    with pytest.raises(PolicyError, match="not a competent authority"):
        make([partner("sa", kind="ngo", agreement=a)], [])


# --- transfers abroad -----------------------------------------------------------------------


def test_adequacy_list_is_dated_and_lists_the_netherlands_but_not_brazil() -> None:
    listed = adequacy_list()
    assert listed.as_of.year >= 2026
    assert listed.covers("NL")
    assert not listed.covers("BR")
    assert not listed.covers("US")


def test_adequacy_claimed_for_a_country_not_on_the_list_is_withheld() -> None:
    policy = make([overseas("ilo-br", "BR")], [grant_all(["ilo-br"], view="no-identity")])
    d = decide(policy, facts("alert.outbound", source="nca"), NOW).for_partner("ilo-br")
    assert d.decided_by == "guard:dpa-s73"
    assert "not on the adequacy list" in d.reason


def test_adequate_transfer_is_documented_as_the_act_requires() -> None:
    policy = make([overseas("ilo-nl")], [grant_all(["ilo-nl"], basis="adequacy")])
    d = decide(policy, facts("alert.outbound", source="nca"), NOW).for_partner("ilo-nl")
    assert d.outcome is Outcome.DELIVER
    assert d.basis is TransferBasis.ADEQUACY
    assert d.transfer is not None
    doc = d.transfer.to_json()
    assert doc["time"] == "2026-11-28T12:00:00.000000Z"
    assert doc["recipient"] == "ilo-nl"
    assert doc["jurisdiction"] == "NL"
    assert doc["basis"] == "adequacy"
    assert "s.74AA" in doc["justification"]
    assert doc["event_type"] == "alert.outbound"
    assert doc["view"] == "full"


def test_appropriate_safeguards_without_an_instrument_are_refused_on_load() -> None:
    t = {"basis": "appropriate_safeguards", "relevant_authority": True}
    with pytest.raises(PolicyError, match="instrument"):
        make([overseas("ilo-us", "US", transfer=t)], [])


def test_appropriate_safeguards_with_an_instrument_are_delivered_and_cite_it() -> None:
    policy = make([safeguarded("ilo-us", "US")], [grant_all(["ilo-us"], view="no-identity")])
    d = decide(policy, facts("alert.outbound", source="nca"), NOW).for_partner("ilo-us")
    assert d.outcome is Outcome.DELIVER
    assert d.transfer is not None
    assert d.transfer.instrument == "UK-US law-enforcement data agreement"


def test_special_circumstances_transfer_is_held_with_its_documentation() -> None:
    t = {"basis": "special_circumstances", "relevant_authority": True, "justification": "life"}
    policy = make(
        [overseas("ilo-br", "BR", transfer=t)], [grant_all(["ilo-br"], view="no-identity")]
    )
    d = decide(policy, facts("alert.outbound", source="nca"), NOW).for_partner("ilo-br")
    assert d.outcome is Outcome.HELD
    assert d.decided_by == "guard:hold-dpa-s76"
    assert d.transfer is not None
    assert d.transfer.basis is TransferBasis.SPECIAL_CIRCUMSTANCES
    assert "life" in d.transfer.justification


def test_each_partner_named_by_one_rule_records_its_own_transfer_basis() -> None:
    partners = [overseas("ilo-nl"), safeguarded("ilo-al", "AL")]
    policy = make(partners, [grant_all(["ilo-nl", "ilo-al"], view="no-identity")])
    d = decide(policy, facts("alert.outbound", source="nca"), NOW)
    assert d.for_partner("ilo-nl").basis is TransferBasis.ADEQUACY
    assert d.for_partner("ilo-al").basis is TransferBasis.APPROPRIATE_SAFEGUARDS


def test_rule_asserting_a_basis_the_partner_does_not_have_is_withheld() -> None:
    policy = make(
        [safeguarded("ilo-us", "US")], [grant_all(["ilo-us"], view="no-identity", basis="adequacy")]
    )
    d = decide(policy, facts("alert.outbound", source="nca"), NOW).for_partner("ilo-us")
    assert d.decided_by == "guard:dpa-s73"
    assert "rule asserts transfer basis adequacy" in d.reason


# --- SIENA handling codes, every value against every partner kind -----------------------------

_EXPECTED_SIENA: dict[tuple[SienaHandling, PartnerKind], str] = {
    (SienaHandling.H0, PartnerKind.NGO): "guard:siena-h0",
    (SienaHandling.H1, PartnerKind.PROSECUTOR): "guard:siena-h1",
    (SienaHandling.H1, PartnerKind.COURT): "guard:siena-h1",
}


def _kind_partner(kind: PartnerKind) -> dict[str, Any]:
    if kind is PartnerKind.NGO:
        return ngo("p")
    return partner("p", kind=kind.value)


@pytest.mark.parametrize("kind", list(PartnerKind))
@pytest.mark.parametrize("code", list(SienaHandling))
def test_every_siena_code_against_every_partner_kind(
    code: SienaHandling, kind: PartnerKind
) -> None:
    policy = make([_kind_partner(kind), partner("src")], [grant_all(["p"], view="no-identity")])
    f = facts(
        source="src",
        body=payload(consent=True),
        siena_handling=code.value,
        intended_recipients=["p"] if code is SienaHandling.H2 else [],
        siena_restrictions="ask first" if code is SienaHandling.H3 else None,
    )
    d = decide(policy, f, NOW).for_partner("p")
    expected = _EXPECTED_SIENA.get((code, kind))
    if expected is not None:
        assert (d.outcome, d.decided_by) == (Outcome.WITHHOLD, expected)
    elif code is SienaHandling.H3:
        assert (d.outcome, d.decided_by) == (Outcome.HELD, "guard:hold-h3")
    else:
        assert d.outcome is Outcome.DELIVER, d.reason


def test_siena_h1_reaches_a_prosecutor_the_provider_authorised() -> None:
    policy = make([partner("cps", kind="prosecutor")], [grant_all(["cps"])])
    f = facts(source="o", siena_handling="H1", origin_authorised_recipients=["cps"])
    assert decide(policy, f, NOW).for_partner("cps").outcome is Outcome.DELIVER


def test_siena_h2_not_naming_the_partner_is_withheld() -> None:
    policy = make([partner("met")], [grant_all(["met"])])
    f = facts(source="o", siena_handling="H2", intended_recipients=["other"])
    assert decide(policy, f, NOW).for_partner("met").decided_by == "guard:siena-h2"


def test_siena_origin_message_without_a_handling_code_is_held() -> None:
    src = overseas("ilo-nl", siena=True)
    policy = make([src, partner("met")], [grant_all(["met"])])
    d = decide(policy, facts("alert.inbound", source="ilo-nl"), NOW).for_partner("met")
    assert d.outcome is Outcome.HELD
    assert d.decided_by == "guard:hold-siena-unmarked"


def test_siena_restrictions_without_a_handling_code_are_held() -> None:
    policy = make([partner("met")], [grant_all(["met"])])
    f = facts(source="o", siena_restrictions="not for court")
    assert decide(policy, f, NOW).for_partner("met").decided_by == "guard:hold-siena-unmarked"


def test_non_siena_message_without_a_handling_code_is_delivered() -> None:
    policy = make([partner("met")], [grant_all(["met"])])
    assert decide(policy, facts(source="o"), NOW).for_partner("met").outcome is Outcome.DELIVER


# --- country markings -----------------------------------------------------------------------


@pytest.mark.parametrize("origin", ["EL", "el", "GR"])
def test_greek_origin_as_el_or_gr_is_eu_origin(origin: str) -> None:
    policy = make([safeguarded("ilo-us", "US")], [grant_all(["ilo-us"], view="no-identity")])
    f = facts("alert.outbound", source="nca", origin_country=origin)
    assert decide(policy, f, NOW).for_partner("ilo-us").decided_by == "guard:eu-origin"


@pytest.mark.parametrize("origin", ["NLD", "XX", "ZZ"])
def test_unknown_origin_code_fails_closed_abroad(origin: str) -> None:
    policy = make(
        [safeguarded("ilo-us", "US"), partner("met")],
        [grant_all(["ilo-us", "met"], view="no-identity")],
    )
    d = decide(policy, facts("alert.outbound", source="nca", origin_country=origin), NOW)
    assert d.for_partner("ilo-us").decided_by == "guard:eu-origin"
    assert d.for_partner("met").outcome is Outcome.DELIVER


def test_non_eu_origin_goes_abroad() -> None:
    policy = make([safeguarded("ilo-us", "US")], [grant_all(["ilo-us"], view="no-identity")])
    f = facts("alert.outbound", source="nca", origin_country="US")
    assert decide(policy, f, NOW).for_partner("ilo-us").outcome is Outcome.DELIVER


def test_partner_jurisdiction_el_is_normalised_to_gr() -> None:
    loaded = make([overseas("ilo-gr", "EL")], [])
    assert loaded.policy.partners[0].jurisdiction == "GR"


def test_partner_jurisdiction_that_is_not_iso_is_refused_on_load() -> None:
    with pytest.raises(PolicyError, match="not an ISO 3166-1 alpha-2"):
        make([overseas("ilo-xx", "XX")], [])


# --- every value of the other markings ------------------------------------------------------


@pytest.mark.parametrize("tlp", list(Tlp))
def test_every_tlp_value_for_a_partner_not_named_and_outside_the_organisation(tlp: Tlp) -> None:
    policy = make([partner("met"), partner("src")], [grant_all(["met"])])
    d = decide(policy, facts(source="src", tlp=tlp.value), NOW).for_partner("met")
    expected = {
        Tlp.RED: "guard:tlp-red",
        Tlp.AMBER_STRICT: "guard:tlp-amber-strict",
    }.get(tlp)
    if expected is None:
        assert d.outcome is Outcome.DELIVER
    else:
        assert (d.outcome, d.decided_by) == (Outcome.WITHHOLD, expected)


@pytest.mark.parametrize("handling", list(GradingHandling))
def test_every_3x5x2_handling_value(handling: GradingHandling) -> None:
    policy = make([partner("met")], [grant_all(["met"])])
    grading = (
        None
        if handling is GradingHandling.NONE
        else {"source": "SOURCE_1", "intelligence": "A", "handling": handling.value}
    )
    d = decide(policy, facts(source="o", grading=grading), NOW).for_partner("met")
    if handling is GradingHandling.C:
        assert (d.outcome, d.decided_by) == (Outcome.HELD, "guard:hold-3x5x2-C")
    else:
        assert d.outcome is Outcome.DELIVER


@pytest.mark.parametrize("event", list(Classification))
@pytest.mark.parametrize("cleared", list(Classification))
def test_every_classification_against_every_clearance(
    event: Classification, cleared: Classification
) -> None:
    policy = make([partner("p", clearance=cleared.value)], [grant_all(["p"])])
    d = decide(policy, facts(source="o", classification=event.value), NOW).for_partner("p")
    if event.rank > cleared.rank:
        assert d.decided_by == "guard:clearance"
    else:
        assert d.outcome is Outcome.DELIVER


@pytest.mark.parametrize(
    ("marking", "value"),
    [
        ("classification", "RESTRICTED"),
        ("tlp", "WHITE"),
        ("siena_handling", "H4"),
        ("grading", {"source": "SOURCE_1", "intelligence": "A", "handling": "X"}),
    ],
)
def test_unknown_marking_value_is_refused_not_read_as_unrestricted(
    marking: str, value: Any
) -> None:
    with pytest.raises(PolicyDecisionError):
        facts(source="o", **{marking: value})
