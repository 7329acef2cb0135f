"""Pure parts of the benchmark harness: percentiles, rates, /proc readings, synthetic data."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from adapters.exchange.signed import EnvelopeSealer
from benchmarks.exchange import make_keyring
from benchmarks.measure import (
    CLOCK_TICKS,
    parse_stat_cpu,
    parse_status_kb,
    percentile,
    read_proc,
    summarise_latencies,
    sustained_rate,
)
from benchmarks.synthetic import FORENAMES, referral_document, sealed_referrals
from broker.crypto.signing import verify
from broker.events.envelope import decode_envelope, decode_payload


def test_percentile_is_the_nearest_measured_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 100 .. 1, unsorted on purpose
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile(values, 0) == 1


def test_percentile_never_interpolates() -> None:
    assert percentile([10.0, 20.0], 50) == 10.0
    assert percentile([10.0, 20.0], 51) == 20.0


def test_percentile_of_no_values_is_refused() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_percentile_outside_0_to_100_is_refused() -> None:
    with pytest.raises(ValueError, match="q=101"):
        percentile([1.0], 101)


def test_latency_summary_is_in_milliseconds() -> None:
    summary = summarise_latencies([0.001 * v for v in range(1, 201)])
    assert summary.count == 200
    assert summary.p50_ms == pytest.approx(100)
    assert summary.p95_ms == pytest.approx(190)
    assert summary.p99_ms == pytest.approx(198)
    assert summary.max_ms == pytest.approx(200)


def test_sustained_rate_leaves_out_the_warm_up() -> None:
    # Ten slow events over the first 5 s, then 90 events 10 ms apart (100 events/s).
    slow = [0.5 * i for i in range(10)]
    fast = [5.0 + 0.01 * i for i in range(1, 91)]
    assert sustained_rate(slow + fast, warmup_fraction=0.1) == pytest.approx(100, rel=0.02)


def test_sustained_rate_needs_two_distinct_times() -> None:
    with pytest.raises(ValueError, match="same instant"):
        sustained_rate([1.0, 1.0, 1.0])


def test_cpu_seconds_are_user_plus_system_ticks() -> None:
    fields = ["S"] + ["0"] * 10 + ["300", "100"] + ["0"] * 30
    stat = "4242 (odd ) name (x)) " + " ".join(fields)
    assert parse_stat_cpu(stat) == pytest.approx(400 / CLOCK_TICKS)


def test_status_value_is_read_in_kilobytes() -> None:
    status = "Name:\tpython\nVmHWM:\t  123456 kB\nVmRSS:\t   65432 kB\n"
    assert parse_status_kb(status, "VmHWM") == 123456
    assert parse_status_kb(status, "VmRSS") == 65432


def test_missing_status_line_is_an_error() -> None:
    with pytest.raises(ValueError, match="VmHWM"):
        parse_status_kb("Name:\tpython\n", "VmHWM")


def test_this_process_cpu_grows_with_work() -> None:
    before = read_proc(os.getpid())
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        sum(range(10_000))
    after = read_proc(os.getpid())
    assert after.cpu_seconds - before.cpu_seconds >= 0.2


def test_this_process_peak_memory_covers_an_allocation() -> None:
    before = read_proc(os.getpid())
    block = bytearray(64 * 1024 * 1024)
    block[::4096] = b"x" * len(block[::4096])  # touch every page so it is resident
    after = read_proc(os.getpid())
    assert after.hwm_kb >= after.rss_kb > 0
    assert after.hwm_kb - before.rss_kb >= 60 * 1024
    del block


def test_synthetic_referral_is_about_4_kb_of_committed_signed_avro_and_verifies(
    tmp_path: Path,
) -> None:
    keyring = make_keyring(tmp_path)
    ready = list(sealed_referrals(EnvelopeSealer(keyring.police), 5))
    # About 2 KB of payload and header, and about 2.5 KB of commitment proof (#20).
    assert all(3_800 <= len(r.envelope) <= 5_200 for r in ready)
    envelope = decode_envelope(ready[0].envelope)
    verify(envelope, keyring.trust)
    victim = decode_payload(envelope)["victim"]
    assert victim["forename"] in FORENAMES
    assert victim["date_of_birth"]


def test_synthetic_referrals_each_have_their_own_subject(tmp_path: Path) -> None:
    keyring = make_keyring(tmp_path)
    ready = list(sealed_referrals(EnvelopeSealer(keyring.police), 20))
    assert len({r.event.subject for r in ready}) == 20
    assert len({r.event_id for r in ready}) == 20


def test_synthetic_referral_is_the_same_for_the_same_seed_and_index() -> None:
    assert referral_document(7, seed=3) == referral_document(7, seed=3)
    assert referral_document(7, seed=3) != referral_document(8, seed=3)


def test_the_benchmark_policy_is_one_the_router_would_start_with() -> None:
    from datetime import UTC, datetime
    from pathlib import Path

    from broker.policy import load_checked_policy

    policy = Path(__file__).resolve().parents[2] / "benchmarks" / "policy.yaml"
    loaded = load_checked_policy(policy, datetime.now(UTC))
    assert {p.id for p in loaded.policy.partners} >= {"nca", "gmp", "salvation-army"}


def test_the_floors_named_proof_branches_write_the_envelopes_own_bytes(tmp_path: Path) -> None:
    import io

    import fastavro

    from benchmarks.floor import _branches_named
    from broker.events.codec import split_frame

    keyring = make_keyring(tmp_path)
    for ready in sealed_referrals(EnvelopeSealer(keyring.police), 3):
        writer, body = split_frame(ready.envelope)
        envelope = fastavro.schemaless_reader(io.BytesIO(body), writer.parsed, None)
        assert isinstance(envelope, dict)
        assert envelope["proof"]["entries"]
        out = io.BytesIO()
        fastavro.schemaless_writer(out, writer.parsed, _branches_named(envelope))
        assert out.getvalue() == body


def test_a_breakdown_counts_each_timed_call_and_restores_the_steps_after() -> None:
    from benchmarks.inproc import Breakdown, breakdown_of
    from broker.router import route as route_module

    original = route_module.admit
    steps = Breakdown()
    with breakdown_of(steps):
        assert route_module.admit is not original
        timed = steps.timed("twice", lambda x: x * 2)
        assert [timed(1), timed(2)] == [2, 4]
    assert route_module.admit is original
    assert steps.calls["twice"] == 2
    assert "twice" in steps.table(events=2)


def test_a_run_that_quarantined_any_input_is_refused_naming_the_audit_kinds() -> None:
    from benchmarks.router_run import RouterRunError, check_routed

    check_routed("run", {"decision": 10})
    with pytest.raises(RouterRunError, match=r"did not route every input.*quarantine"):
        check_routed("run", {"decision": 9, "quarantine": 1})
