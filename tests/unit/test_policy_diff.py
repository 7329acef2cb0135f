"""``msht policy diff``: rule by rule and partner by partner, what a change grants or withholds."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from broker.cli import main
from broker.policy import load_policy
from broker.policy.diff import diff_policies, redecide
from broker.policy.model import LoadedPolicy, parse_policy
from tests.unit.policy_support import facts

REPO = Path(__file__).resolve().parents[2]
TEXT = (REPO / "deploy" / "policy.yaml").read_text()
CURRENT = load_policy(REPO / "deploy" / "policy.yaml")
NOW = datetime.now(UTC)


def _without_rule(rule_id: str) -> str:
    start = TEXT.index(f"  - id: {rule_id}\n")
    end = TEXT.find("\n  - id: ", start + 1)
    assert end != -1, "the last rule: remove it with yaml instead"
    return TEXT[:start] + TEXT[end + 1 :]


def _policy(text: str) -> LoadedPolicy:
    return parse_policy(text.encode(), source="proposed")


def test_identical_policies_have_no_difference() -> None:
    assert diff_policies(CURRENT, _policy(TEXT)).empty


def test_a_removed_rule_is_named_and_its_grants_withheld_partner_by_partner() -> None:
    diff = diff_policies(CURRENT, _policy(_without_rule("referrals-to-nca")))
    assert [(r.rule, r.change) for r in diff.rules] == [("referrals-to-nca", "removed")]
    assert {(r.partner, r.event_type) for r in diff.reach} == {
        ("nca", "referral.nrm"),
        ("nca", "referral.dtn"),
    }
    for r in diff.reach:
        assert r.withdrawn == ("referrals-to-nca -> full",)
        assert r.granted == ()


def test_an_added_rule_is_a_grant() -> None:
    diff = diff_policies(_policy(_without_rule("referrals-to-nca")), CURRENT)
    assert [(r.rule, r.change) for r in diff.rules] == [("referrals-to-nca", "added")]
    assert all(r.granted == ("referrals-to-nca -> full",) for r in diff.reach)


def test_a_changed_view_is_a_rule_change_and_a_grant_and_a_withholding() -> None:
    grant = "deliver: {to: [nca], view: full}"
    assert TEXT.count(grant) >= 1
    at = TEXT.index(grant)
    proposed = _policy(TEXT[:at] + grant.replace("full", "no-identity") + TEXT[at + len(grant) :])
    diff = diff_policies(CURRENT, proposed)
    assert [(r.rule, r.change, r.detail) for r in diff.rules] == [
        ("referrals-to-nca", "changed", "deliver")
    ]
    assert all(r.granted == ("referrals-to-nca -> no-identity",) for r in diff.reach)
    assert all(r.withdrawn == ("referrals-to-nca -> full",) for r in diff.reach)


def test_a_moved_rule_is_reported_with_its_positions() -> None:
    document = yaml.safe_load(TEXT)
    document["rules"].insert(0, document["rules"].pop())
    last = CURRENT.policy.rules[-1].id
    moved = [
        r for r in diff_policies(CURRENT, _policy(yaml.safe_dump(document))).rules if r.rule == last
    ]
    n = len(CURRENT.policy.rules)
    assert [(r.change, r.detail) for r in moved] == [("moved", f"position {n} -> 1")]


def test_redecide_names_the_partner_and_both_decisions() -> None:
    proposed = _policy(_without_rule("referrals-to-nca"))
    event = facts(event_type="referral.nrm")
    changes = {d.partner: d for d in redecide(CURRENT, proposed, event, NOW)}
    assert set(changes) == {"nca"}
    assert "by referrals-to-nca" in changes["nca"].before
    assert "referrals-to-nca" not in changes["nca"].after


def test_the_command_exits_1_and_prints_identifiers_when_a_grant_is_withheld(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proposed = tmp_path / "proposed.yaml"
    proposed.write_text(_without_rule("referrals-to-nca"))
    assert main(["policy", "diff", str(REPO / "deploy" / "policy.yaml"), str(proposed)]) == 1
    out = capsys.readouterr().out
    assert "rule referrals-to-nca: removed" in out
    assert "withholds: referrals-to-nca -> full" in out


def test_the_command_exits_0_when_nothing_differs(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(REPO / "deploy" / "policy.yaml")
    assert main(["policy", "diff", path, path]) == 0
    assert "no difference" in capsys.readouterr().out
