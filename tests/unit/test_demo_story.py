"""The demo's review step: the reviewer is the one deploy/policy.yaml allows, never a guess."""

from __future__ import annotations

import pytest

from broker.demo import story
from broker.errors import ConfigError
from broker.policy import load_policy


def test_the_duty_officer_decides_the_h3_holds_of_the_story() -> None:
    policy = load_policy(story.POLICY).policy
    assert {story.reviewer_for(policy, "guard:hold-h3", r.partner) for r in story.REVIEWS} == {
        "duty-officer"
    }


def test_the_story_releases_for_one_partner_and_refuses_for_another() -> None:
    assert sorted((r.verdict.value, r.partner) for r in story.REVIEWS) == [
        ("refuse", "met-police"),
        ("release", "nca"),
    ]


def test_a_guard_no_reviewer_may_decide_is_a_configuration_error() -> None:
    policy = load_policy(story.POLICY).policy
    with pytest.raises(ConfigError, match="guard:hold-dpa-s76 for nca"):
        # A policy without reviewers: nobody may decide any hold.
        story.reviewer_for(policy.model_copy(update={"reviewers": []}), "guard:hold-dpa-s76", "nca")
