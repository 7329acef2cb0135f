"""Loading a policy file: every problem reported at once, with its location."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from broker.errors import PolicyError
from broker.policy.model import load_policy, parse_policy
from tests.unit.policy_support import grant_all, load, partner, policy_doc

REPO = Path(__file__).resolve().parents[2]


def _problems(data: bytes) -> tuple[str, ...]:
    with pytest.raises(PolicyError) as info:
        parse_policy(data, source="test.yaml")
    return info.value.problems


def test_loading_lists_every_problem_with_its_location() -> None:
    doc = policy_doc(
        [partner("met", clearance="VERY_SECRET"), partner("ilo", jurisdiction="Nether")], []
    )
    problems = _problems(yaml.safe_dump(doc).encode())
    assert any(p.startswith("partners[0] (met).clearance:") for p in problems)
    assert any(p.startswith("partners[1] (ilo).jurisdiction:") for p in problems)
    assert len(problems) == 2


def test_unknown_key_in_a_rule_is_refused() -> None:
    rule = {"id": "r", "match": {"event_type": ["referral.nrm"]}, "deny": {"reason": "x"}}
    problems = _problems(yaml.safe_dump(policy_doc([partner("met")], [rule])).encode())
    assert problems == ("rules[0] (r).match.event_type: Extra inputs are not permitted",)


def test_malformed_yaml_names_the_line() -> None:
    problems = _problems(b"version: 1\npartners: [\n  - id: x\n")
    assert len(problems) == 1
    assert "line" in problems[0]


def test_policy_that_is_not_a_mapping_is_refused() -> None:
    assert _problems(b"- just\n- a list\n") == (
        "(top level): must be a mapping with partners, views and rules",
    )


def test_duplicate_partner_ids_are_refused() -> None:
    problems = _problems(yaml.safe_dump(policy_doc([partner("met"), partner("met")], [])).encode())
    assert problems == ("partners[1] (met).id: duplicate partner id 'met'",)


def test_rule_with_both_deliver_and_deny_is_refused() -> None:
    rule = {**grant_all(["met"]), "deny": {"reason": "x"}}
    problems = _problems(yaml.safe_dump(policy_doc([partner("met")], [rule])).encode())
    assert problems == ("rules[0] (grant-all): needs exactly one of 'deliver' or 'deny'",)


def test_rule_with_neither_deliver_nor_deny_is_refused() -> None:
    problems = _problems(yaml.safe_dump(policy_doc([partner("met")], [{"id": "r"}])).encode())
    assert problems == ("rules[0] (r): needs exactly one of 'deliver' or 'deny'",)


def test_unknown_event_type_is_refused() -> None:
    rule = {"id": "r", "match": {"event_types": ["referral.nmr"]}, "deny": {"reason": "x"}}
    problems = _problems(yaml.safe_dump(policy_doc([partner("met")], [rule])).encode())
    assert problems == ("rules[0] (r).match.event_types: unknown event type 'referral.nmr'",)


def test_group_named_like_a_partner_is_refused() -> None:
    doc = policy_doc([partner("met"), partner("nca", groups=["met"])], [])
    assert _problems(yaml.safe_dump(doc).encode()) == (
        "groups: group name 'met' is also a partner id",
    )


def test_yaml_yes_in_victim_consent_reads_as_consent_given() -> None:
    text = yaml.safe_dump(policy_doc([partner("met")], [])).encode() + (
        b"\n".join(
            [
                b"rules:",
                b"- id: r",
                b"  match: {victim_consent: [yes, no]}",
                b"  deny: {reason: x}",
            ]
        )
    )
    policy = parse_policy(text.replace(b"rules: []\n", b"")).policy
    consent = policy.rules[0].match.victim_consent
    assert consent is not None
    assert [c.value for c in consent] == ["yes", "no"]


def test_unreadable_policy_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path / "missing.yaml")


def test_demo_policy_loads() -> None:
    loaded = load_policy(REPO / "deploy" / "policy.yaml")
    assert {p.id for p in loaded.policy.partners} >= {
        "met-police",
        "cps",
        "nca",
        "ilo-nl",
        "ilo-xx",
    }


def test_loaded_policy_groups_expand_to_members() -> None:
    loaded = load(
        policy_doc([partner("a", groups=["g"]), partner("b", groups=["g"]), partner("c")], [])
    )
    assert loaded.policy.expand(["g", "c"]) == frozenset({"a", "b", "c"})
