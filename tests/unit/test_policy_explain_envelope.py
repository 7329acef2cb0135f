"""``msht policy explain`` reads a signed event exactly as the exchange carries it."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.cli import main
from broker.cli.explain_event import decode_event
from broker.crypto.signing import sign
from broker.errors import PolicyDecisionError
from broker.events.envelope import build_envelope, encode_envelope
from tests.unit.event_keys import agency_key
from tests.unit.event_samples import OCCURRED, PUBLISHED, markings, referral

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "deploy" / "policy.yaml"


def _signed_referral(**payload: object) -> bytes:
    """A signed NRM referral from a force that is not itself a partner of the demo policy."""
    envelope = build_envelope(
        event_type="referral.nrm",
        source="gmp",
        subject="NRM-2026-000123",
        markings=markings(),
        payload=referral(**payload),
        occurred_at=OCCURRED,
        published_at=PUBLISHED,
    )
    return encode_envelope(sign(envelope, agency_key("gmp"), signed_at=PUBLISHED))


def _rows(out: str) -> dict[str, tuple[str, str]]:
    """Partner -> (outcome, first line of "decided by") from the rendered table."""
    rows: dict[str, tuple[str, str]] = {}
    for line in out.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) == 7 and cells[0] and cells[0] != "partner":
            rows[cells[0]] = (cells[1], cells[2])
    return rows


def _explain(path: Path) -> int:
    return main(["policy", "explain", str(POLICY), str(path), "--at", "2026-11-28"])


def test_decode_event_reads_header_payload_and_record_name_of_an_envelope() -> None:
    event = decode_event(_signed_referral())
    assert event.header.event_type == "referral.nrm"
    assert event.header.source == "gmp"
    assert event.record == "org.msht.events.Referral"
    assert event.payload["referral_id"] == referral()["referral_id"]


def test_explain_of_a_signed_envelope_names_the_outcome_and_rule_per_partner(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = tmp_path / "referral.avro"
    event.write_bytes(_signed_referral())
    assert _explain(event) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows == {
        "met-police": ("delivered", "referrals-to-police"),
        "cps": ("withheld", "not-subscribed"),
        "nca": ("delivered", "referrals-to-nca"),
        "ilo-nl": ("withheld", "not-subscribed"),
        "ilo-xx": ("withheld", "not-subscribed"),
        "salvation-army": ("withheld", "default-deny"),
        "ictg": ("withheld", "default-deny"),
    }


def test_explain_does_not_require_a_signature(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unsigned = build_envelope(
        event_type="referral.nrm",
        source="gmp",
        subject="NRM-2026-000124",
        markings=markings(),
        payload=referral(),
        occurred_at=OCCURRED,
        published_at=PUBLISHED,
    )
    event = tmp_path / "unsigned.avro"
    event.write_bytes(encode_envelope(unsigned))
    assert _explain(event) == 0
    assert _rows(capsys.readouterr().out)["nca"] == ("delivered", "referrals-to-nca")


def test_a_truncated_envelope_is_a_clear_error_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _signed_referral()
    event = tmp_path / "truncated.avro"
    event.write_bytes(data[: len(data) // 2])
    assert _explain(event) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("msht: error: not a readable encoded event: ")
    assert "ends before" in captured.err
    assert "Traceback" not in captured.err


def test_bytes_that_are_not_an_envelope_raise_policy_decision_error() -> None:
    with pytest.raises(PolicyDecisionError, match="not a readable encoded event"):
        decode_event(b"\x00\x01 not an event")
