"""``msht policy check`` and ``msht policy explain``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from broker.cli import main
from tests.unit.policy_support import SCHEMA, header, overseas, partner, payload, policy_doc

REPO = Path(__file__).resolve().parents[2]


def _write_policy(tmp_path: Path, doc: dict[str, object]) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_check_of_a_sound_policy_prints_its_version_and_exits_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rule = {
        "id": "r",
        "match": {"max_classification": "OFFICIAL_SENSITIVE"},
        "deliver": {"to": ["met"], "view": "full"},
    }
    path = _write_policy(tmp_path, policy_doc([partner("met")], [rule]))
    assert main(["policy", "check", str(path), "--at", "2026-11-28"]) == 0
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"policy OK: 1 partners, 1 rules, version sha256:{digest}"
    assert "who may publish what" in out
    assert "adequacy list as of" in out


def test_check_lists_every_problem_and_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    met = partner(
        "met", agreement={"id": "ISA-1", "purposes": ["investigation"], "expires": "2025-01-01"}
    )
    rule = {
        "id": "r",
        "match": {"max_classification": "OFFICIAL_SENSITIVE"},
        "deliver": {"to": ["met", "ghost"], "view": "nope"},
    }
    path = _write_policy(tmp_path, policy_doc([met], [rule]))
    assert main(["policy", "check", str(path), "--at", "2026-11-28"]) == 1
    err = capsys.readouterr().err
    assert "3 problem(s)" in err
    assert "unknown partner or group 'ghost'" in err
    assert "unknown view 'nope'" in err
    assert "ISA-1 expired on 2025-01-01" in err


def test_check_reports_load_errors_as_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write_policy(tmp_path, policy_doc([partner("met", kind="police")], []))
    assert main(["policy", "check", str(path)]) == 1
    assert "partners[0] (met).kind:" in capsys.readouterr().err


def test_check_of_the_demo_policy_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["policy", "check", str(REPO / "deploy" / "policy.yaml"), "--at", "2026-11-28"]) == 0
    )
    assert capsys.readouterr().out.startswith("policy OK: 7 partners")


def test_explain_shows_every_partner_with_outcome_rule_and_withheld_fields(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    # The schema catalogue reads <Name>.v<N>.avsc files in the events namespace.
    (schemas / "TestReferral.v1.avsc").write_text(
        json.dumps({**SCHEMA, "namespace": "org.msht.events"})
    )
    rules = [{"id": "to-met", "deliver": {"to": ["met", "ilo"], "view": "full"}}]
    policy = _write_policy(
        tmp_path, policy_doc([partner("met"), overseas("ilo"), partner("nca")], rules)
    )
    event = tmp_path / "event.json"
    event.write_text(
        json.dumps(
            {
                "header": header(source="gmp"),
                "payload": payload(consent=False),
                "payload_record": "TestReferral",
            }
        )
    )
    code = main(
        [
            "policy",
            "explain",
            str(policy),
            str(event),
            "--schemas",
            str(schemas),
            "--at",
            "2026-11-28",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    for expected in (
        "met",
        "ilo",
        "nca",
        "delivered",
        "withheld",
        "default-deny",
        "guard:msa-s52",
        "victim.forename",
        "full+no-identity",
        "adequacy",
    ):
        assert expected in out, expected


def test_explain_prints_agreement_purpose_and_lawful_basis_per_partner(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    (schemas / "TestReferral.v1.avsc").write_text(
        json.dumps({**SCHEMA, "namespace": "org.msht.events"})
    )
    rules = [{"id": "to-met", "deliver": {"to": ["met", "ilo"], "view": "full"}}]
    policy = _write_policy(tmp_path, policy_doc([partner("met"), overseas("ilo")], rules))
    event = tmp_path / "event.json"
    event.write_text(
        json.dumps(
            {
                "header": header(source="gmp"),
                "payload": payload(),
                "payload_record": "TestReferral",
            }
        )
    )
    argv = ["policy", "explain", str(policy), str(event), "--schemas", str(schemas)]
    assert main([*argv, "--at", "2026-11-28"]) == 0
    out = capsys.readouterr().out
    for expected in ("ISA-met", "ISA-ilo", "prevention", "Part 3", "s.74AA"):
        assert expected in out, expected
