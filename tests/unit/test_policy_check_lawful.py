"""``msht policy check`` finds partners that can never receive and grants a guard always
overrides, and notices agreements not yet in force."""

from __future__ import annotations

from datetime import UTC, datetime

from broker.policy.check import check_policy, policy_notices
from tests.unit.policy_support import grant_all, make, overseas, partner

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_partner_abroad_without_a_basis_is_reported_as_never_receiving() -> None:
    ilo = overseas("ilo-xx", "BR")
    del ilo["transfer"]
    problems = check_policy(make([ilo], []).policy, NOW)
    assert problems == [
        "partners[0] (ilo-xx): can never receive: transfer to BR has no basis (guard:dpa-s73)"
    ]


def test_partner_without_an_agreement_is_reported_as_never_receiving() -> None:
    met = partner("met")
    del met["agreement"]
    problems = check_policy(make([met], []).policy, NOW)
    assert problems == [
        "partners[0] (met): can never receive: no information-sharing agreement (guard:agreement)"
    ]


def test_adequacy_claimed_off_the_list_is_reported() -> None:
    problems = check_policy(make([overseas("ilo-us", "US")], []).policy, NOW)
    assert len(problems) == 1
    assert "US is not on the adequacy list" in problems[0]


def test_rule_whose_view_the_agreement_does_not_cover_is_always_overridden() -> None:
    a = {
        "id": "A",
        "purposes": ["investigation"],
        "views": ["no-identity"],
        "expires": "2030-01-01",
    }
    rule = {**grant_all(["met"]), "match": {"max_classification": "OFFICIAL_SENSITIVE"}}
    policy = make([partner("met", agreement=a)], [rule])
    assert check_policy(policy.policy, NOW) == [
        "rules[0] (grant-all): every grant to met is overridden: agreement A does not cover "
        "view 'full'"
    ]


def test_agreement_not_yet_started_is_a_notice_not_a_problem() -> None:
    a = {"id": "A", "purposes": ["investigation"], "starts": "2027-01-01", "expires": "2030-01-01"}
    policy = make([partner("met", agreement=a, originates=["case.charge"])], [])
    assert check_policy(policy.policy, NOW) == []
    assert policy_notices(policy.policy, NOW) == ["met: agreement A starts on 2027-01-01 (not yet)"]
