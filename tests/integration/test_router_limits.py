"""Hostile inputs on the real broker cannot hold a partition (issue 13, defects 2 and 5).

On one ingress partition, between good events: a 1 MiB random record, an event whose key
id is 300,000 characters, one whose subject is 300,000 characters, a signature bomb of
2,000 signatures, and a 548 KiB event with a 560,000-character key id. Before the fix the
first of them aborted the partition's transaction for ever (its quarantine copy did not
fit a produce request) and nothing behind it was routed. Now each is quarantined naming
the bound it exceeds, the good events behind them are delivered, every input has exactly
one audit record, and the event loop is never held for long while the router works.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from broker.audit import parse_record
from broker.events.envelope import decode_envelope, encode_envelope
from broker.kafka import clients as kafka
from broker.settings import Settings
from broker.types import AgencyId, KeyId, Subject
from tests.integration.fault_env import (
    AGENCY,
    check_exactly_once,
    committed_audit,
    good_events,
    wait_for_decisions,
)
from tests.integration.router_env import RouterExchange, router_exchange


@pytest.fixture
async def exchange(settings: Settings, tmp_path: Path) -> AsyncIterator[RouterExchange]:
    """This test's own keys, trust store and uuid-named topics, one partition each."""
    async with router_exchange(settings, tmp_path / "state", partitions=1) as ex:
        yield ex


def _hostile(good: bytes) -> dict[str, bytes]:
    """Each hostile input, by the bound it must be quarantined for."""
    envelope = decode_envelope(good)
    first = envelope.signatures[0]

    def with_key_id(key_id: str) -> bytes:
        signature = dataclasses.replace(first, key_id=KeyId(key_id))
        return encode_envelope(dataclasses.replace(envelope, signatures=(signature,)), check=False)

    subject = dataclasses.replace(envelope.header, subject=Subject("s" * 300_000))
    bomb = dataclasses.replace(envelope, signatures=(first,) * 2_000)
    return {
        "record-bytes": os.urandom(1_048_000),
        "key-id-chars": with_key_id("ed25519:" + "a" * 300_000),
        "header-string-chars": encode_envelope(
            dataclasses.replace(envelope, header=subject), check=False
        ),
        "signatures": encode_envelope(bomb, check=False),
        # The adversarial run's second case: 548 KiB, nearly all of it a key id.
        "record-bytes (key id)": with_key_id("ed25519:" + "k" * 560_000),
    }


async def _max_loop_lag(stop: asyncio.Event) -> float:
    """The longest the event loop was late waking a 5 ms sleep, until ``stop``."""
    worst = 0.0
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(0.005)
        worst = max(worst, time.perf_counter() - started - 0.005)
    return worst


async def test_hostile_inputs_are_quarantined_and_good_events_behind_them_are_routed(
    exchange: RouterExchange,
) -> None:
    events = good_events(exchange, 10)
    hostile = _hostile(events[0].value)
    topic = exchange.settings.ingress_topic(AgencyId(AGENCY))
    records = [
        *((e.subject.encode(), e.value) for e in events[:5]),
        *((None, value) for value in hostile.values()),
        *((e.subject.encode(), e.value) for e in events[5:]),
    ]
    async with kafka.producer(exchange.settings, max_request_size=2 * 1024 * 1024) as producer:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key)

    watching = asyncio.Event()
    lag = asyncio.create_task(_max_loop_lag(watching))
    exchange.start_router()
    await wait_for_decisions(exchange.settings, {e.event_id for e in events}, within=90)
    stats = await exchange.stop_router()
    watching.set()
    worst_lag = await lag

    audit = [parse_record(v) for _, _, v in await committed_audit(exchange.settings)]
    quarantined = await exchange.read(
        exchange.settings.quarantine_topic, expected=len(hostile), wait=30
    )
    print(
        f"{len(records)} inputs, {len(audit)} audit records, {stats.aborted_batches} aborted "
        f"batches, event loop at most {worst_lag * 1000:.1f} ms late"
    )
    assert Counter(r.input_offset for r in audit) == Counter(range(len(records)))
    assert Counter(r.kind for r in audit) == {"decision": len(events), "quarantine": len(hostile)}
    limits = Counter(dict(q.headers)["msht-limit"].decode() for q in quarantined)
    assert limits == Counter(name.split(" ")[0] for name in hostile)
    assert stats.aborted_batches == 0
    findings = await check_exactly_once(exchange, events)
    assert findings.problems() == {}
    assert findings.distinct_decisions == len(events)
    # Off the loop, the router's CPU work delays it by milliseconds; allow for a busy
    # shared machine, but a held loop (a whole batch, or one bomb) would be seconds.
    assert worst_lag < 0.25
