"""Metrics: counted on commit only, by outcome, reason and partner; served with health."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from broker.audit import AuditChain, ChainHead, parse_record
from broker.errors import ConfigError, TransportError
from broker.observe import Metrics, serve_metrics
from broker.observe.metrics import Health
from broker.router.processor import ProcessorStats, RouteProcessor
from broker.router.restore import DedupWindow
from tests.unit.test_router_engine import GROUP, TP, Harness, _cluster, _delivered, _run_until
from tests.unit.test_router_processor import (
    TOPICS,
    World,
    _charge,
    _incoming,
    _sealed,
    world,  # noqa: F401  # the module-scoped fixture
)


def _value(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def _processor(world: World, metrics: Metrics) -> RouteProcessor:  # noqa: F811
    chain = AuditChain(ChainHead.genesis("ingress.met-police/0"), router="unit")
    return RouteProcessor(
        world.config, TOPICS, chain, DedupWindow(100), stats=ProcessorStats(metrics=metrics)
    )


def test_outcomes_are_counted_when_their_transaction_commits(world: World) -> None:  # noqa: F811
    metrics = Metrics("router")
    processor = _processor(world, metrics)
    processor.process(_incoming(_sealed(world.police, _charge())))
    assert _value(metrics, "msht_inputs_total", outcome="decided") == 0
    processor.committed()
    assert _value(metrics, "msht_inputs_total", outcome="decided") == 1
    assert _value(metrics, "msht_end_to_end_seconds_count") == 1


def test_a_rolled_back_batch_is_not_counted(world: World) -> None:  # noqa: F811
    metrics = Metrics("router")
    processor = _processor(world, metrics)
    processor.process(_incoming(_sealed(world.police, _charge())))
    processor.rolled_back()
    processor.committed()
    assert _value(metrics, "msht_inputs_total", outcome="decided") == 0


def test_each_partner_is_counted_with_the_outcome_its_audit_record_gives(
    world: World,  # noqa: F811
) -> None:
    metrics = Metrics("router")
    processor = _processor(world, metrics)
    out = processor.process(_incoming(_sealed(world.police, _charge())))
    processor.committed()
    record = parse_record(next(o.value for o in out if o.topic == "audit"))
    assert record.outcomes
    for o in record.outcomes:
        labels = {"partner": o.partner, "outcome": str(o.outcome)}
        assert _value(metrics, "msht_recipient_outcomes_total", **labels) == 1, labels


def test_quarantine_is_counted_by_reason(world: World) -> None:  # noqa: F811
    metrics = Metrics("router")
    processor = _processor(world, metrics)
    out = processor.process(_incoming(b"junk"))
    processor.committed()
    reason = dict(next(o for o in out if o.topic == "quarantine").headers)["msht-reason"]
    assert _value(metrics, "msht_quarantined_total", reason=reason.decode()) == 1
    assert _value(metrics, "msht_inputs_total", outcome="quarantined") == 1


def test_a_republication_is_counted_as_a_duplicate(world: World) -> None:  # noqa: F811
    metrics = Metrics("router")
    processor = _processor(world, metrics)
    value = _sealed(world.police, _charge())
    processor.process(_incoming(value, offset=0))
    processor.process(_incoming(value, offset=1))
    processor.committed()
    assert _value(metrics, "msht_inputs_total", outcome="duplicate") == 1


async def test_engine_counts_batches_commits_and_lag() -> None:
    kafka = _cluster(5)
    metrics = Metrics("router")
    harness = Harness(kafka)
    engine = harness.engine()
    engine._metrics = metrics
    await _run_until(engine, kafka, lambda: len(_delivered(kafka)) == 5)
    assert _value(metrics, "msht_batch_seconds_count") >= 1
    assert _value(metrics, "msht_last_commit_timestamp_seconds") > 0
    assert _value(metrics, "msht_consumer_lag", topic=TP.topic, partition="0") == 0
    assert kafka.committed_offset(GROUP, TP) == 5


async def test_engine_counts_an_aborted_batch_by_cause() -> None:
    kafka = _cluster(3)
    kafka.fail_next("commit_transaction", TransportError("broker went away"))
    metrics = Metrics("router")
    engine = Harness(kafka).engine()
    engine._metrics = metrics
    await _run_until(engine, kafka, lambda: len(_delivered(kafka)) == 3)
    assert _value(metrics, "msht_transaction_aborts_total", cause="transport") == 1
    assert _value(metrics, "msht_producer_fenced_total") == 0


async def test_engine_counts_a_fenced_producer() -> None:
    kafka = _cluster(3)
    metrics = Metrics("router")
    engine = Harness(kafka).engine()
    engine._metrics = metrics

    async def expire() -> None:
        kafka.expire_transaction(f"tx-{TP.topic}.0")

    kafka.on_operation["send_offsets_to_transaction"] = expire
    await _run_until(engine, kafka, lambda: len(_delivered(kafka)) == 3)
    assert _value(metrics, "msht_producer_fenced_total") == 1


async def test_engine_is_ready_only_once_assigned_and_restored() -> None:
    kafka = _cluster(1)
    metrics = Metrics("router")
    engine = Harness(kafka).engine()
    engine._metrics = metrics
    assert not metrics.health.ready()
    seen: list[bool] = []

    def done() -> bool:
        seen.append(metrics.health.ready())
        return len(_delivered(kafka)) == 1

    await _run_until(engine, kafka, done)
    assert seen[-1]
    assert not metrics.health.ready(), "not ready (not connected) once stopped"


@pytest.mark.parametrize(
    ("flags", "problems"),
    [
        ({}, ["not connected", "not assigned", "not restored"]),
        ({"connected": True, "assigned": True}, ["not restored"]),
        ({"connected": True, "assigned": True, "restored": True}, []),
        (
            {"connected": True, "assigned": True, "restored": True, "failed": "X"},
            ["failed: X"],
        ),
    ],
)
def test_readiness_names_what_is_missing(flags: dict[str, object], problems: list[str]) -> None:
    health = Health(**flags)  # type: ignore[arg-type]
    assert health.problems() == problems
    assert health.ready() == (problems == [])


@pytest.fixture
def served() -> Iterator[tuple[Metrics, int]]:
    metrics = Metrics("router")
    server = serve_metrics(metrics, 0)
    yield metrics, server.port
    server.close()


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_readyz_is_503_until_ready_then_200(served: tuple[Metrics, int]) -> None:
    metrics, port = served
    status, body = _get(port, "/readyz")
    assert status == 503
    assert "not connected" in body
    metrics.health.connected = metrics.health.assigned = metrics.health.restored = True
    assert _get(port, "/readyz") == (200, "ready\n")


def test_healthz_turns_503_when_the_process_failed(served: tuple[Metrics, int]) -> None:
    metrics, port = served
    assert _get(port, "/healthz") == (200, "ok\n")
    metrics.health.failed = "AuthenticationError"
    assert _get(port, "/healthz") == (503, "AuthenticationError\n")


def test_metrics_endpoint_serves_the_prometheus_text_format(served: tuple[Metrics, int]) -> None:
    metrics, port = served
    metrics.set_loaded(policy_version="2026-01", trust_store="abc")
    metrics.inputs.labels("decided").inc(3)
    status, text = _get(port, "/metrics")
    assert status == 200
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }
    assert samples[("msht_inputs_total", (("outcome", "decided"),))] == 3
    info = [labels for name, labels in samples if name == "msht_loaded_info"]
    assert dict(info[0])["policy_version"] == "2026-01"


def test_an_unknown_path_is_404(served: tuple[Metrics, int]) -> None:
    _, port = served
    assert _get(port, "/nope")[0] == 404


def test_metrics_server_binds_loopback_by_default() -> None:
    server = serve_metrics(Metrics("router"), 0)
    try:
        assert server._server.server_address[0] == "127.0.0.1"
    finally:
        server.close()


def test_a_port_in_use_is_a_config_error_naming_it() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ConfigError, match=f"MSHT_METRICS_PORT {port}"):
            serve_metrics(Metrics("router"), port)
