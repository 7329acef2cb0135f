"""The policy's ``reviewers`` section: who may decide which holds, checked at load."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from broker.errors import PolicyError
from broker.policy.model import HOLDING_GUARDS, parse_policy

REPO = Path(__file__).resolve().parents[2]


def _with_reviewers(reviewers: list[dict[str, object]]) -> bytes:
    raw = yaml.safe_load((REPO / "deploy" / "policy.yaml").read_bytes())
    raw["reviewers"] = reviewers
    return yaml.safe_dump(raw).encode()


def test_the_demo_policy_names_a_reviewer_for_every_holding_guard() -> None:
    policy = parse_policy((REPO / "deploy" / "policy.yaml").read_bytes()).policy
    officer = policy.reviewer("duty-officer")
    assert officer is not None
    assert {"guard:hold-h3", "guard:hold-3x5x2-C"} <= set(officer.guards)
    assert {g for r in policy.reviewers for g in r.guards} == HOLDING_GUARDS


@pytest.mark.parametrize(
    ("reviewer", "problem"),
    [
        ({"id": "desk", "guards": ["guard:siena-h1"]}, "is not a holding guard"),
        ({"id": "cps", "guards": ["guard:hold-h3"]}, "is also a partner id"),
        ({"id": "desk", "guards": ["guard:hold-h3"], "partners": ["nobody"]}, "no partner"),
        ({"id": "desk", "guards": []}, "guards"),
    ],
)
def test_a_bad_reviewer_is_refused_at_load(reviewer: dict[str, object], problem: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(_with_reviewers([reviewer]))
    assert problem in str(caught.value) + " ".join(caught.value.problems)


def test_a_reviewer_limited_to_partners_may_decide_only_for_them() -> None:
    policy = parse_policy(
        _with_reviewers(
            [{"id": "desk", "guards": ["guard:hold-h3"], "partners": ["uk-law-enforcement"]}]
        )
    ).policy
    desk = policy.reviewer("desk")
    assert desk is not None
    assert desk.may_decide(policy, "guard:hold-h3", "nca")
    assert not desk.may_decide(policy, "guard:hold-h3", "ilo-nl")
    assert not desk.may_decide(policy, "guard:hold-3x5x2-C", "nca")
