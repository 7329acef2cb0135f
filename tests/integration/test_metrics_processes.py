"""The router and a subscriber as separate processes serve metrics that match the traffic.

Both are started as ``msht`` processes with ``MSHT_METRICS_PORT``; the test publishes a
known mix (new events, a re-publication, an undecodable record), waits for the router's
audit records, then scrapes both ``/metrics`` endpoints and compares every count with what
was published and with what the audit topic says each partner was given.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from broker.settings import Settings
from broker.types import EventId
from tests.integration.router_env import REPO, RouterExchange, router_exchange

CHARGE = ("police/case-charge.json", "case-json")
NEW_EVENTS = 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _samples(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    _, text = _get(port, "/metrics")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:]


async def _wait_ready(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"process exited {proc.returncode}: {_tail(log)}"
        try:
            status, _ = _get(port, "/readyz")
        except OSError:
            status = 0
        if status == 200:
            return
        await asyncio.sleep(0.3)
    pytest.fail(f"/readyz on {port} never turned ready: {_get(port, '/readyz')}\n{_tail(log)}")


def _spawn(ex: RouterExchange, args: list[str], port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **ex.env(), "PYTHONUNBUFFERED": "1", "MSHT_METRICS_PORT": str(port)}
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "msht"), "--log-level", "WARNING", *args],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
        )  # fmt: skip


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def test_router_and_subscriber_metrics_count_what_was_published(
    settings: Settings, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    async with router_exchange(settings, tmp_path / "state") as ex:
        router_port, subscriber_port = _free_port(), _free_port()
        router_log, subscriber_log = tmp_path / "router.log", tmp_path / "subscriber.log"
        processes.append(_spawn(ex, ["router", "--instance", "metrics"], router_port, router_log))
        processes.append(
            _spawn(
                ex,
                ["subscribe", "--partner", "cps", "--outbox", str(tmp_path / "outbox"),
                 "--group", f"metrics-{uuid.uuid4().hex[:8]}"],
                subscriber_port,
                subscriber_log,
            )
        )  # fmt: skip
        # Ingress topics exist before the router starts, so it is assigned them at once.
        await _wait_ready(router_port, processes[0], router_log)
        status, body = _get(router_port, "/healthz")
        assert (status, body) == (200, "ok\n")

        event = ex.sample_event(*CHARGE)
        values = [
            ex.sealers["met-police"].seal(event, EventId(str(uuid.uuid4())))
            for _ in range(NEW_EVENTS)
        ]
        await ex.publish("met-police", [*values, values[0], b"not an event at all"])
        audit = await ex.wait_for_audit(NEW_EVENTS + 2)
        assert len(audit) == NEW_EVENTS + 2

        given: Counter[tuple[str, str]] = Counter(
            (o.partner, str(o.outcome)) for r in audit if r.kind == "decision" for o in r.outcomes
        )
        assert given[("cps", "delivered")] == NEW_EVENTS

        # The router counts on commit; the audit records above are committed, so are these.
        router = _samples(router_port)
        assert _value(router, "msht_inputs_total", outcome="decided") == NEW_EVENTS
        assert _value(router, "msht_inputs_total", outcome="duplicate") == 1
        assert _value(router, "msht_inputs_total", outcome="quarantined") == 1
        quarantined = {
            dict(labels)["reason"]: v
            for (name, labels), v in router.items()
            if name == "msht_quarantined_total"
        }
        assert sum(quarantined.values()) == 1
        for (partner, outcome), count in given.items():
            assert (
                _value(router, "msht_recipient_outcomes_total", partner=partner, outcome=outcome)
                == count
            ), (partner, outcome)
        assert _value(router, "msht_end_to_end_seconds_count") == NEW_EVENTS + 2
        assert _value(router, "msht_batch_seconds_count") >= 1
        assert _value(router, "msht_last_commit_timestamp_seconds") > time.time() - 120
        assert _value(router, "msht_ready") == 1
        assert any(
            name == "msht_loaded_info" and dict(labels).get("policy_version") == ex.policy.version
            for name, labels in router
        )
        topic = ex.settings.ingress_topic("met-police")  # type: ignore[arg-type]
        lag = ("msht_consumer_lag", frozenset({"topic": topic, "partition": "0"}.items()))
        assert router[lag] == 0

        # The subscriber renders cps's deliveries: one per event delivered to it.
        await _wait_ready(subscriber_port, processes[1], subscriber_log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            rendered = _value(_samples(subscriber_port), "msht_inputs_total", outcome="rendered")
            if rendered >= NEW_EVENTS:
                break
            await asyncio.sleep(0.5)
        subscriber = _samples(subscriber_port)
        assert _value(subscriber, "msht_inputs_total", outcome="rendered") == NEW_EVENTS
        assert _value(subscriber, "msht_inputs_total", outcome="failed") == 0
        assert _value(subscriber, "msht_end_to_end_seconds_count") == NEW_EVENTS
        for proc in processes:
            proc.terminate()
        assert [proc.wait(60) for proc in processes] == [0, 0]
