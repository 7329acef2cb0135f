"""``msht audit verify`` and ``msht audit query`` on a JSON-lines copy of the audit trail."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker.audit import (
    AuditChain,
    ChainHead,
    RecipientOutcome,
    RecordSigner,
    body_digest,
    canonical_json,
    chain_id,
)
from broker.audit.verify import router_keys
from broker.cli import main
from broker.crypto.signing_keys import SigningKey
from broker.crypto.trust import dump_trust_store
from broker.types import AgencyId, EventId, Outcome, PartnerId, Subject
from tests.unit.event_keys import agency_key, store, trusted

T0 = datetime(2026, 11, 28, 5, 0, tzinfo=UTC)
MET = chain_id("ingress.met-police", 0)
CPS = chain_id("ingress.cps", 0)


@pytest.fixture(autouse=True)
def _no_default_trust_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The default trust store lives under the state dir; point it at an empty folder.
    monkeypatch.setenv("MSHT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("MSHT_TRUST_STORE", raising=False)


def _chain(
    chain: str, count: int, *, signer: RecordSigner | None = None, prefix: str = "ev"
) -> list[bytes]:
    builder = AuditChain(ChainHead.genesis(chain), router="router-1@test", signer=signer)
    records = []
    for i in range(count):
        partner = "ilo-nl" if i % 2 else "cps"
        record = builder.append(
            time=T0 + timedelta(minutes=i),
            event_id=EventId(f"{prefix}-{i}"),
            source=AgencyId("met-police"),
            subject=Subject(f"NRM-2026-{i:06d}"),
            outcomes=[
                RecipientOutcome(
                    PartnerId("nca"), Outcome.DELIVER, "referrals-to-nca", view="full"
                ),
                RecipientOutcome(PartnerId(partner), Outcome.WITHHOLD, "default-deny"),
            ],
            policy_version="sha256:" + "ab" * 32,
            input_offset=i,
        )
        records.append(record.to_bytes())
    return records


def _interleaved() -> list[bytes]:
    met, cps = _chain(MET, 5), _chain(CPS, 3, prefix="cps")
    out: list[bytes] = []
    for i in range(5):
        out.append(met[i])
        if i < len(cps):
            out.append(cps[i])
    return out


def _write(tmp_path: Path, records: Sequence[bytes], name: str = "audit.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(b"".join(record + b"\n" for record in records))
    return path


def _altered(data: bytes, **changes: object) -> bytes:
    """The record with members changed but its digest left as it was (a naive tamper)."""
    document = json.loads(data)
    document.update(changes)
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def _verify(*args: str) -> int:
    return main(["audit", "verify", *args])


def _trust_store(tmp_path: Path, *keys: SigningKey, routers: tuple[str, ...]) -> Path:
    path = tmp_path / "trust.yaml"
    path.write_text(dump_trust_store(store(*(trusted(k) for k in keys), routers=routers)))
    return path


def _signer(key: SigningKey) -> RecordSigner:
    return RecordSigner(key.key_id, key.private_key)


# --- verify ------------------------------------------------------------------------------


def test_an_intact_trail_exits_zero_and_summarises_every_chain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = _interleaved()
    assert _verify("--from-file", str(_write(tmp_path, records))) == 0
    out = capsys.readouterr().out
    assert "audit trail intact: 8 records in 2 chains" in out
    assert "BREAK" not in out
    heads = {json.loads(r)["chain"]: json.loads(r)["digest"] for r in records}  # last wins
    met_head, cps_head = heads[MET], heads[CPS]
    met_row = next(line for line in out.splitlines() if MET in line)
    cps_row = next(line for line in out.splitlines() if CPS in line)
    assert met_head in met_row
    assert cps_head in cps_row
    assert "intact" in met_row
    assert "intact" in cps_row
    assert "signatures not checked" in out


def test_a_record_altered_in_the_middle_exits_one_naming_its_chain_and_seq(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = _chain(MET, 5)
    records[2] = _altered(records[2], subject="NRM-2026-999999")
    assert _verify("--from-file", str(_write(tmp_path, records))) == 1
    out = capsys.readouterr().out
    assert f"BREAK chain {MET}, seq 2, event ev-2, line 3: the record was altered" in out
    assert "audit trail BROKEN" in out


def test_a_record_rewritten_with_a_fresh_digest_breaks_the_link_to_its_successor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = _chain(MET, 5)
    forged = json.loads(records[2])
    forged["subject"] = "NRM-2026-999999"
    forged["digest"] = body_digest(forged)
    records[2] = canonical_json(forged)
    assert _verify("--from-file", str(_write(tmp_path, records))) == 1
    out = capsys.readouterr().out
    assert f"BREAK chain {MET}, seq 3, event ev-3" in out
    assert "prev_digest does not match the digest of the record before it, seq 2" in out


def test_a_deleted_record_exits_one_naming_the_missing_seq(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = _chain(MET, 5)
    del records[2]
    assert _verify("--from-file", str(_write(tmp_path, records))) == 1
    out = capsys.readouterr().out
    assert f"BREAK chain {MET}, seq 3, event ev-3, line 3: seq 2 missing after seq 1" in out


def test_a_reordered_record_exits_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = _chain(MET, 5)
    records[1], records[3] = records[3], records[1]
    assert _verify("--from-file", str(_write(tmp_path, records))) == 1
    out = capsys.readouterr().out
    assert f"BREAK chain {MET}, seq 3, event ev-3, line 2: seqs 1-2 missing" in out
    assert f"BREAK chain {MET}, seq 1, event ev-1, line 4: out of order or replayed" in out


def test_a_break_in_one_chain_leaves_the_other_intact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = _interleaved()
    records[2] = _altered(records[2], router="someone-else")  # MET seq 1
    assert _verify("--from-file", str(_write(tmp_path, records))) == 1
    lines = capsys.readouterr().out.splitlines()
    assert "BROKEN" in next(line for line in lines if line.startswith(f"│ {MET}"))
    assert "intact" in next(line for line in lines if line.startswith(f"│ {CPS}"))


def test_an_unreadable_line_is_a_break(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = _chain(MET, 3)
    records.insert(1, b"{not json")
    assert _verify("--from-file", str(_write(tmp_path, records))) == 1
    assert "line 2: unreadable" in capsys.readouterr().out


def test_records_cut_off_after_a_noted_head_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = _chain(MET, 5)
    noted = json.loads(records[-1])["digest"]
    path = _write(tmp_path, records[:3])
    assert _verify("--from-file", str(path), "--head", f"{MET}={noted}") == 1
    assert "records were cut off" in capsys.readouterr().out


def test_signatures_by_the_router_key_in_the_trust_store_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    router = agency_key("router")
    trust = _trust_store(tmp_path, router, routers=("router",))
    path = _write(tmp_path, _chain(MET, 4, signer=_signer(router)))
    assert _verify("--from-file", str(path), "--trust-store", str(trust)) == 0
    out = capsys.readouterr().out
    assert f"all valid ({router.key_id})" in out
    assert f"router signatures checked against {trust}" in out


def test_records_signed_by_a_key_that_is_not_a_router_key_exit_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    router, impostor = agency_key("router"), agency_key("met-police")
    trust = _trust_store(tmp_path, router, impostor, routers=("router",))
    path = _write(tmp_path, _chain(MET, 3, signer=_signer(impostor)))
    assert _verify("--from-file", str(path), "--trust-store", str(trust)) == 1
    out = capsys.readouterr().out
    assert "which is not a trusted router key" in out
    assert "3/3 missing or invalid" in out


def test_a_signature_respelled_with_the_same_bytes_exits_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Issue 13, defect 7: the last character before "==" carries 4 unused bits.
    router = agency_key("router")
    trust = _trust_store(tmp_path, router, routers=("router",))
    records = _chain(MET, 3, signer=_signer(router))
    signature = json.loads(records[1])["signature"]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    respelled = signature[:-3] + alphabet[alphabet.index(signature[-3]) ^ 1] + "=="
    records[1] = _altered(records[1], signature=respelled)
    path = _write(tmp_path, records)
    assert _verify("--from-file", str(path), "--trust-store", str(trust)) == 1
    out = capsys.readouterr().out
    assert "canonical padded base64url" in out
    assert "1/3 missing or invalid" in out


def test_unsigned_records_fail_when_router_keys_are_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trust = _trust_store(tmp_path, agency_key("router"), routers=("router",))
    path = _write(tmp_path, _chain(MET, 2))
    assert _verify("--from-file", str(path), "--trust-store", str(trust)) == 1
    assert "the record is not signed" in capsys.readouterr().out


def test_the_configured_trust_store_is_used_when_it_lists_a_router_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    router = agency_key("router")
    trust = _trust_store(tmp_path, router, routers=("router",))
    monkeypatch.setenv("MSHT_TRUST_STORE", str(trust))
    path = _write(tmp_path, _chain(MET, 2))
    assert _verify("--from-file", str(path)) == 1
    assert "the record is not signed" in capsys.readouterr().out


def test_a_trust_store_without_a_router_key_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trust = _trust_store(tmp_path, agency_key("met-police"), routers=())
    path = _write(tmp_path, _chain(MET, 2))
    assert _verify("--from-file", str(path), "--trust-store", str(trust)) == 2
    err = capsys.readouterr().err
    assert "no agency with 'router: true'" in err
    assert "Traceback" not in err


def test_a_missing_file_is_a_usage_error_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _verify("--from-file", str(tmp_path / "nope.jsonl")) == 2
    err = capsys.readouterr().err
    assert err.startswith("msht: error: --from-file ")
    assert "cannot read" in err


def test_no_broker_is_a_connection_error_with_exit_code_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing listens on port 1 of the loopback address: the connection is refused at once.
    monkeypatch.setenv("MSHT_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    assert _verify("--topic", "msht.audit") == 2
    err = capsys.readouterr().err
    assert "msht: error: no Kafka broker answered at 127.0.0.1:1" in err
    assert "Traceback" not in err


def test_an_unparseable_option_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", "verify", "--head", "not-a-head"])
    assert exit_info.value.code == 2
    assert "CHAIN=<64 hex digest>" in capsys.readouterr().err


# --- query -------------------------------------------------------------------------------


def _query(tmp_path: Path, records: Sequence[bytes], *filters: str) -> int:
    return main(["audit", "query", "--from-file", str(_write(tmp_path, records)), *filters])


def test_query_by_partner_prints_only_records_that_decided_for_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _query(tmp_path, _chain(MET, 5), "--partner", "ilo-nl", "--json") == 0
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["event_id"] for r in found] == ["ev-1", "ev-3"]


def test_query_by_outcome_for_a_partner_lists_only_those_decisions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    filters = ("--partner", "cps", "--outcome", "withheld", "--json")
    assert _query(tmp_path, _chain(MET, 5), *filters) == 0
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["event_id"] for r in found] == ["ev-0", "ev-2", "ev-4"]


def test_query_by_held_outcome_finds_nothing_when_nothing_is_held(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _query(tmp_path, _chain(MET, 5), "--outcome", "held", "--json") == 0
    assert capsys.readouterr().out == ""


def test_query_json_lines_are_the_records_canonical_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = _chain(MET, 3)
    assert _query(tmp_path, records, "--event-id", "ev-2", "--json") == 0
    assert capsys.readouterr().out.encode() == records[2] + b"\n"


def test_query_since_is_inclusive_and_until_exclusive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    since, until = (T0 + timedelta(minutes=1)).isoformat(), (T0 + timedelta(minutes=3)).isoformat()
    assert _query(tmp_path, _chain(MET, 5), "--since", since, "--until", until, "--json") == 0
    found = [json.loads(line)["event_id"] for line in capsys.readouterr().out.splitlines()]
    assert found == ["ev-1", "ev-2"]


def test_query_table_names_event_subject_and_each_outcome(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _query(tmp_path, _chain(MET, 3), "--subject", "NRM-2026-000001") == 0
    out = capsys.readouterr().out
    assert "1 matching audit record(s)" in out
    assert "ev-1" in out
    assert "ev-0" not in out
    assert "ev-2" not in out
    assert "nca: delivered by referrals-to-nca (full)" in out
    assert "ilo-nl: withheld by default-deny" in out


def test_query_with_no_match_says_so_and_exits_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _query(tmp_path, _chain(MET, 2), "--event-id", "absent") == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no matching audit records" in captured.err


def test_query_refuses_to_answer_from_an_unreadable_trail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = _chain(MET, 2)
    records.append(b"[]")
    assert _query(tmp_path, records, "--partner", "nca") == 1
    assert "run `msht audit verify`" in capsys.readouterr().err


def test_query_refuses_a_time_that_is_not_iso(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", "query", "--since", "last tuesday"])
    assert exit_info.value.code == 2
    assert "not an ISO 8601 time" in capsys.readouterr().err


def test_verify_checks_each_signature_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 19: the command verified every signature twice (once for the breaks, once more
    # for the table), which was half of its time; the table now reads verify_chain's tally.
    router = agency_key("router")
    trust = _trust_store(tmp_path, router, routers=("router",))
    path = _write(tmp_path, _chain(MET, 6, signer=_signer(router)))
    calls: list[bytes] = []

    class _Counting:
        def __init__(self, key: Ed25519PublicKey) -> None:
            self._key = key

        def verify(self, signature: bytes, message: bytes) -> None:
            calls.append(message)
            self._key.verify(signature, message)

    monkeypatch.setattr(
        "broker.cli.audit.router_keys",
        lambda p: {k: _Counting(v) for k, v in router_keys(p).items()},
    )
    assert _verify("--from-file", str(path), "--trust-store", str(trust)) == 0
    assert f"all valid ({router.key_id})" in capsys.readouterr().out
    assert len(calls) == 6


# --- verify --jobs -------------------------------------------------------------------------


def test_verify_help_documents_jobs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["audit", "verify", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--jobs N" in out
    assert "default: one per CPU" in out


@pytest.mark.parametrize("jobs", ["0", "-2", "two"])
def test_verify_refuses_jobs_that_are_not_a_positive_count(
    jobs: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", "verify", "--jobs", jobs])
    assert exit_info.value.code == 2
    assert "--jobs" in capsys.readouterr().err


def test_verify_prints_the_same_in_parallel_as_in_one_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("broker.audit.verify.PARALLEL_MIN_RECORDS", 1)
    monkeypatch.setattr("broker.audit.verify._CHUNK", 2)
    router, other = agency_key("router"), agency_key("other")
    trust = _trust_store(tmp_path, router, other, routers=("router",))
    records = _chain(MET, 7, signer=_signer(router))
    records[3] = _chain(MET, 4, signer=_signer(other))[3]  # signed by a key that is no router's
    records[5] = _altered(records[5], subject="NRM-2026-999999")
    del records[1]
    path = _write(tmp_path, records)
    outputs = []
    for jobs in ("1", "2"):
        code = _verify("--from-file", str(path), "--trust-store", str(trust), "--jobs", jobs)
        outputs.append((code, capsys.readouterr().out))
    assert outputs[0][0] == 1
    assert outputs[0][1].count("BREAK chain") >= 3
    assert outputs[1] == outputs[0]
