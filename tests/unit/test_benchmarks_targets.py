"""Issue 19's parts of the benchmark harness that need no broker: targets, floor, bulk CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters.exchange.signed import EnvelopeSealer
from adapters.intake.pipeline import take_in
from benchmarks.exchange import make_keyring
from benchmarks.floor import primitive_floor
from benchmarks.report import render_table
from benchmarks.router_run import read_times
from benchmarks.synthetic import referral_csv_row, sealed_referrals, write_referral_csv
from benchmarks.targets import Target, issue19_targets
from tests.unit.adapter_samples import EXAMPLES


def test_an_at_most_target_is_met_at_the_goal_and_missed_above_it() -> None:
    assert Target("cpu", 0.7, 0.7, "ms", at_most=True).met is True
    missed = Target("cpu", 2.1, 0.7, "ms", at_most=True)
    assert missed.met is False
    assert "MISSED (3.0x the target)" in missed.line()


def test_an_at_least_target_is_met_at_the_goal_and_missed_below_it() -> None:
    assert Target("rate", 1300, 1300, "/s", at_most=False).met is True
    missed = Target("rate", 650, 1300, "/s", at_most=False)
    assert missed.met is False
    assert "MISSED (50% of the target)" in missed.line()


def test_a_target_without_a_figure_says_not_measured() -> None:
    target = Target("rate", None, 1300, "/s", at_most=False)
    assert target.met is None
    assert "not measured" in target.line()


def _results() -> dict[str, Any]:
    latency = {"count": 10, "p50_ms": 10.0, "p95_ms": 20.0, "p99_ms": 40.0, "max_ms": 50.0}
    return {
        "machine": {
            "cores": 2, "cpu_model": "x", "ram_gb": 1.0, "kafka": "4", "python": "3.11",
            "aiokafka": "0.14", "fastavro": "1", "cryptography": "50",
            "load_average_at_start": [0.5, 0.5, 0.5], "commit": "abc",
        },
        "plain_envelope_bytes": 2000.0,
        "ingress_fields_sealed_to_router": 17,
        "envelope_bytes": {"mean": 5000.0, "min": 4900, "max": 5100},
        "floor": {
            "events": 5, "views": 3, "sealed_views": 1, "sealed_bytes": 3000.0,
            "verify_us": 100.0, "sign_us": 100.0, "x25519_us": 100.0, "aes_gcm_us": 5.0,
            "decode_us": 45.0, "encode_us": 150.0, "total_us": 500.0,
        },
        "io": [{"fanout": 4, "transactional": True, "events_per_second": 2000.0,
                "events": 10, "seconds": 1.0}],
        "router": {
            "throughput": [{"cpu_seconds_per_1000_events": 1.0,
                            "sustained_events_per_second": 1000.0}],
            "latency": [
                {"offered_rate": 100.0, "latency_ms": {"all": latency}},
                {"offered_rate": 200.0, "latency_ms": {"all": {**latency, "p99_ms": 120.0}}},
            ],
        },
        "publisher": {"events_per_second": 2500.0, "rows": 10_000},
        "audit_verify": {"records_per_second": 5000.0},
    }  # fmt: skip


def test_every_issue_19_target_reads_its_figure_from_the_results() -> None:
    found = {t.name: (t.figure, t.met) for t in issue19_targets(_results())}
    assert found["router CPU per referral (3 views, 1 sealed)"] == (1.0, False)
    assert found["router CPU per referral / primitive floor"] == (2.0, False)
    assert found["router sustained throughput, 1 process"] == (1000.0, False)
    assert found["latency p99 at 100/s offered"] == (40.0, True)
    assert found["latency p99 at 200/s offered"] == (120.0, False)
    assert found["msht publish, 10,000-row CSV"] == (2500.0, True)
    assert found["msht audit verify"] == (5000.0, False)


def test_the_fraction_of_the_transactional_io_ceiling_is_noted() -> None:
    [throughput] = [t for t in issue19_targets(_results()) if "throughput" in t.name]
    assert throughput.note == "50% of the transactional I/O ceiling"


def test_the_table_opens_with_the_targets() -> None:
    table = render_table({**_results(), "router": {}, "publisher": None, "audit_verify": None})
    assert table.index("Issue 19 targets") < table.index("Primitive floor")


def test_the_primitive_floor_adds_up_its_operations(tmp_path: Path) -> None:
    keyring = make_keyring(tmp_path)
    envelopes = [r.envelope for r in sealed_referrals(EnvelopeSealer(keyring.police), 5)]
    floor = primitive_floor(envelopes, views=3, sealed_views=1).as_dict()
    parts = ("verify_us", "sign_us", "x25519_us", "aes_gcm_us", "decode_us", "encode_us")
    assert all(floor[p] > 0 for p in parts)
    assert floor["total_us"] == pytest.approx(sum(floor[p] for p in parts))


def test_the_bulk_csv_has_the_example_exports_columns() -> None:
    header = (EXAMPLES / "police/referrals.csv").read_text().splitlines()[0].split(",")
    assert list(referral_csv_row(0)) == header


def test_every_row_of_the_bulk_csv_is_published(tmp_path: Path) -> None:
    keyring = make_keyring(tmp_path)
    path = write_referral_csv(tmp_path / "export.csv", 25)
    intake = take_in(str(path), path.read_bytes(), "nrm-csv", EnvelopeSealer(keyring.police))
    assert intake.rejections == ()
    assert len({r.event_id for r in intake.ready}) == 25


def test_a_subscribers_times_are_read_per_event(tmp_path: Path) -> None:
    out = tmp_path / "times.tsv"
    out.write_text("ev-1\t10.5\t10.25\t10.125\n")
    assert read_times(out) == {"ev-1": (10.5, 10.25, 10.125)}
