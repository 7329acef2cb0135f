"""``check_policy``: unknown names, unreachable rules, grants above clearance, expiry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from broker.errors import PolicyError
from broker.policy.check import check_policy, load_checked_policy, view_problems
from broker.policy.model import load_policy
from tests.unit.policy_support import NOW, grant_all, load, make, partner, policy_doc

REPO = Path(__file__).resolve().parents[2]


def grant(
    to: list[str], rule_id: str = "grant", view: str = "full", **match: object
) -> dict[str, Any]:
    """A rule granting events up to OFFICIAL_SENSITIVE (every test partner's clearance)."""
    return {
        "id": rule_id,
        "match": {"max_classification": "OFFICIAL_SENSITIVE", **match},
        "deliver": {"to": to, "view": view},
    }


def _check(partners: list[dict[str, Any]], rules: list[dict[str, Any]]) -> list[str]:
    return check_policy(load(policy_doc(partners, rules)).policy, NOW)


def test_sound_policy_has_no_problems() -> None:
    assert _check([partner("met")], [grant(["met"])]) == []


def test_rule_naming_an_unknown_partner_is_a_problem() -> None:
    assert _check([partner("met")], [grant(["met", "mett"])]) == [
        "rules[0] (grant).deliver.to: unknown partner or group 'mett'"
    ]


def test_deny_naming_an_unknown_partner_is_a_problem() -> None:
    rule = {"id": "r", "deny": {"reason": "x", "partners": ["ghost"]}}
    assert _check([partner("met")], [rule]) == [
        "rules[0] (r).deny.partners: unknown partner or group 'ghost'"
    ]


def test_rule_naming_an_unknown_view_is_a_problem() -> None:
    assert _check([partner("met")], [grant(["met"], view="fll")]) == [
        "rules[0] (grant).deliver.view: unknown view 'fll'"
    ]


def test_rule_shadowed_by_an_earlier_wider_rule_is_unreachable() -> None:
    rules = [
        grant(["met"], "all-referrals", event_types=["referral.nrm", "referral.dtn"]),
        grant(["met"], "nrm-only", view="no-identity", event_types=["referral.nrm"]),
    ]
    problems = _check([partner("met")], rules)
    assert len(problems) == 1
    assert problems[0].startswith("rules[1] (nrm-only): unreachable")
    assert "all-referrals" in problems[0]


def test_rule_after_a_narrower_rule_is_reachable() -> None:
    rules = [
        grant(["met"], "nrm-only", view="no-identity", event_types=["referral.nrm"]),
        grant(["met"], "all-referrals", event_types=["referral.nrm", "referral.dtn"]),
    ]
    assert _check([partner("met")], rules) == []


def test_rule_is_reachable_while_one_of_its_partners_is_still_undecided() -> None:
    rules = [grant(["met"], "first"), grant(["met", "nca"], "second")]
    assert _check([partner("met"), partner("nca")], rules) == []


def test_rule_shadowed_by_a_catch_all_deny_is_unreachable() -> None:
    rules = [{"id": "stop", "deny": {"reason": "freeze"}}, grant(["met"])]
    problems = _check([partner("met")], rules)
    assert len(problems) == 1
    assert problems[0].startswith("rules[1] (grant): unreachable")


def test_rule_granting_above_a_partners_clearance_is_a_problem() -> None:
    rule = {
        "id": "r",
        "match": {"max_classification": "SECRET"},
        "deliver": {"to": ["met"], "view": "full"},
    }
    assert _check([partner("met")], [rule]) == [
        "rules[0] (r): grants events up to SECRET to met, which is cleared to OFFICIAL_SENSITIVE "
        "(set match.max_classification)"
    ]


def test_rule_without_classification_bound_grants_up_to_top_secret() -> None:
    problems = _check([partner("met", clearance="SECRET")], [grant_all(["met"])])
    assert problems == [
        "rules[0] (grant-all): grants events up to TOP_SECRET to met, which is cleared to SECRET "
        "(set match.max_classification)"
    ]


def test_expired_agreement_is_a_problem() -> None:
    met = partner(
        "met", agreement={"id": "ISA-7", "purposes": ["investigation"], "expires": "2026-01-31"}
    )
    assert _check([met], []) == ["partners[0] (met).agreement: ISA-7 expired on 2026-01-31"]


def test_demo_policy_checks_clean_today() -> None:
    loaded = load_policy(REPO / "deploy" / "policy.yaml")
    assert check_policy(loaded.policy, NOW) == []


def test_router_refuses_a_policy_with_problems(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(policy_doc([partner("met")], [grant(["ghost"])])))
    with pytest.raises(PolicyError) as info:
        load_checked_policy(path, NOW)
    assert info.value.problems == ("rules[0] (grant).deliver.to: unknown partner or group 'ghost'",)


# --- views that do what they say (issue 14) --------------------------------------------------


def _with_view(view: dict[str, object], event_types: list[str] | None = None) -> list[str]:
    rule: dict[str, object] = {"id": "r", "deliver": {"to": ["met"], "view": "v"}}
    if event_types is not None:
        rule["match"] = {"event_types": event_types}
    return view_problems(make([partner("met")], [rule], views={"v": view}).policy)


def test_a_view_tag_no_field_carries_is_a_problem() -> None:
    problems = _with_view({"remove_tags": ["operational"]}, ["referral.nrm"])
    assert any("'operational' is on no field of Referral" in p for p in problems)


def test_a_view_that_withholds_nothing_from_a_record_it_applies_to_is_a_problem() -> None:
    problems = _with_view({"remove_tags": ["operational"]}, ["referral.nrm"])
    assert any("withholds nothing from Referral" in p for p in problems)


def test_a_view_path_that_is_no_field_is_a_problem() -> None:
    problems = _with_view({"remove_fields": ["victim.name"]}, ["referral.nrm"])
    assert any("'victim.name' is no field of Referral" in p for p in problems)


def test_a_view_role_outside_the_vocabulary_is_a_problem() -> None:
    problems = _with_view({"remove_roles": ["neighbour"]}, ["referral.nrm"])
    assert any("'neighbour' is not one of" in p for p in problems)


def test_a_tag_is_checked_against_the_event_types_the_view_is_used_for() -> None:
    # witnesses exist in case updates, not in referrals
    assert _with_view({"remove_roles": ["witness"]}, ["case.charge"]) == []
    problems = _with_view({"remove_roles": ["witness"]}, ["referral.nrm"])
    assert any("no field of Referral is about a witness" in p for p in problems)


def test_a_view_that_removes_something_everywhere_it_applies_is_sound() -> None:
    assert _with_view({"remove_tags": ["identity"]}) == []
