"""The router's guarantees under faults, on the real broker (issues 5 and 7).

Every test publishes good events (referrals and charges of the Met, several subjects, some
marked so that the policy grants them to fewer partners or holds them) keyed by subject,
runs ``msht router`` as its own process (one test runs it in process, to hold a batch
open), does something bad to it or to Kafka, and then
checks with :func:`tests.integration.fault_env.check_exactly_once`: every partner's
committed deliveries (verified and opened with the partner's keys) are exactly the events
:func:`broker.policy.decide` grants it, each once, per subject in publish order; the audit
trail verifies (chain and router signatures) with one decision record per event.

Loads are sized so that the whole module runs in about three minutes on a two-core
machine; each test's docstring says what its size still exercises.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from broker.audit import AuditRecord, parse_record
from broker.kafka import aio
from broker.settings import Settings
from broker.types import AgencyId
from tests.integration.fault_env import (
    AGENCY,
    Published,
    RouterProcesses,
    bad_events,
    check_exactly_once,
    committed_audit,
    good_events,
    private_broker,
    publish_in_one_transaction,
    publish_steadily,
    stop_gracefully,
    wait_for_deciders,
    wait_for_decisions,
    wait_for_progress,
)
from tests.integration.router_env import RouterExchange, kill, router_exchange, subject_key

PARTITIONS = 3


@pytest.fixture
async def exchange(settings: Settings, tmp_path: Path) -> AsyncIterator[RouterExchange]:
    """This test's own keys, trust store and uuid-named topics with three partitions."""
    async with router_exchange(settings, tmp_path / "state", partitions=PARTITIONS) as ex:
        yield ex


@pytest.fixture
def routers(exchange: RouterExchange, tmp_path: Path) -> Iterator[RouterProcesses]:
    """The test's router processes; any still running at the end are killed."""
    processes = RouterProcesses(exchange, tmp_path)
    yield processes
    processes.kill_all()


def _ingress(ex: RouterExchange) -> str:
    return ex.settings.ingress_topic(AgencyId(AGENCY))


def _deciders(records: list[AuditRecord]) -> Counter[str]:
    """How many decisions each router instance committed."""
    return Counter(r.router for r in records if r.kind == "decision")


async def _assert_exactly_once(
    ex: RouterExchange, events: list[Published], routers: RouterProcesses | None = None
) -> None:
    findings = await check_exactly_once(ex, events)
    print(
        f"{len(events)} events, {findings.deliveries} deliveries, "
        f"{findings.distinct_decisions} decisions checked"
    )
    assert findings.problems() == {}, routers.tails() if routers else ""
    assert findings.distinct_decisions == len(events)
    assert findings.deliveries == sum(len(e.grants) for e in events)


async def test_router_killed_part_way_through_2000_events_delivers_each_granted_event_once(
    exchange: RouterExchange, routers: RouterProcesses
) -> None:
    """Issue 5: 2,000 events on three partitions, the router SIGKILLed after it has
    committed some of them and restarted. Every partner receives exactly what the policy
    grants, once, in order per subject; both runs decided part of the load."""
    events = good_events(exchange, 2000)
    routers.spawn("first")
    publishing = asyncio.create_task(
        publish_steadily(exchange.settings, _ingress(exchange), events, rate=250)
    )
    await wait_for_progress(exchange.settings, 600, within=90, alive=routers.alive("first"))
    kill(routers.started["first"])
    routers.spawn("second")
    await publishing
    records = await wait_for_decisions(
        exchange.settings,
        {e.event_id for e in events},
        within=120,
        alive=routers.alive("second"),
    )
    assert stop_gracefully(routers.started["second"]) == 0, routers.tails()
    deciders = _deciders(records)
    print(f"decisions by instance: {dict(deciders)}")
    assert deciders["first"] > 0
    assert deciders["second"] > 0
    await _assert_exactly_once(exchange, events, routers)


async def test_router_killed_three_times_under_steady_load_delivers_each_granted_event_once(
    exchange: RouterExchange, routers: RouterProcesses
) -> None:
    """Issue 7: 1,200 events published at 30/s (a steady load of 40 s); the router is
    SIGKILLed three times, each time after its successor has written more audit records,
    and restarted at once. Each kill lands while events are still being published, and
    the guarantees of the single kill hold after all three."""
    events = good_events(exchange, 1200)
    publishing = asyncio.create_task(
        publish_steadily(exchange.settings, _ingress(exchange), events, rate=30)
    )
    progress = 0
    for run in range(3):
        name = f"run-{run}"
        routers.spawn(name)
        started = time.monotonic()
        progress = await wait_for_progress(
            exchange.settings, progress + 100, within=60, alive=routers.alive(name)
        )
        assert not publishing.done(), f"the load ended before kill {run + 1}"
        kill(routers.started[name])
        print(f"{name} killed {time.monotonic() - started:.1f}s after start, {progress} audited")
    routers.spawn("last")
    await publishing
    records = await wait_for_decisions(
        exchange.settings, {e.event_id for e in events}, within=120, alive=routers.alive("last")
    )
    assert stop_gracefully(routers.started["last"]) == 0, routers.tails()
    print(f"decisions by instance: {dict(_deciders(records))}")
    await _assert_exactly_once(exchange, events, routers)


async def test_one_of_two_routers_killed_and_restarted_delivers_each_granted_event_once(
    exchange: RouterExchange, routers: RouterProcesses
) -> None:
    """Issue 7: two routers in one group share the three ingress partitions under a steady
    load (900 events at 30/s); once both have committed decisions, one is SIGKILLed and
    restarted while the other keeps running. The survivor never stops, the restarted one
    takes partitions back and decides, and every guarantee holds across the rebalances."""
    events = good_events(exchange, 900)
    routers.spawn("a")
    routers.spawn("b")
    publishing = asyncio.create_task(
        publish_steadily(exchange.settings, _ingress(exchange), events, rate=30)
    )
    await wait_for_deciders(exchange.settings, {"a", "b"}, within=60)
    kill(routers.started["a"])
    routers.spawn("a-restarted")
    await publishing
    records = await wait_for_decisions(
        exchange.settings, {e.event_id for e in events}, within=120, alive=routers.alive("b")
    )
    assert routers.alive("a-restarted")(), routers.tails()
    assert stop_gracefully(routers.started["b"]) == 0, routers.tails()
    assert stop_gracefully(routers.started["a-restarted"]) == 0, routers.tails()
    deciders = _deciders(records)
    print(f"decisions by instance: {dict(deciders)}")
    assert set(deciders) == {"a", "b", "a-restarted"}
    await _assert_exactly_once(exchange, events, routers)


async def test_flood_of_malformed_and_forged_events_is_quarantined_while_good_ones_deliver(
    exchange: RouterExchange, routers: RouterProcesses
) -> None:
    """Issue 7: 1,000 bad inputs (random bytes, truncated envelopes, a flipped signature
    bit, events signed by the Met claiming the CPS) shuffled among 1,000 good events. Each
    bad one is quarantined once with its reason in ``msht-reason`` and one quarantine audit
    record; every good one is delivered as granted. The router's rate on good events with
    and without the flood is printed (each load committed in one transaction, so it is
    there at once), not asserted: timing on a shared machine is not a pass/fail matter."""
    warm_up, alone, mixed_good = (good_events(exchange, n) for n in (50, 500, 1000))
    bad = bad_events(exchange, 1000)
    ingress = _ingress(exchange)
    mixed: list[tuple[str, bytes | None, bytes]] = [
        (ingress, e.subject.encode(), e.value) for e in mixed_good
    ]
    for b in bad:
        # Keyed as a publisher keys them (by subject, when the bytes are an envelope), so
        # each fails for its own fault, not for its placement.
        mixed.insert(random.randrange(len(mixed) + 1), (b.topic, subject_key(b.value), b.value))
    routers.spawn("router")
    alive = routers.alive("router")
    rates: dict[str, float] = {}
    for name, load, extra in (
        ("warm-up", warm_up, []),
        ("alone", alone, []),
        ("flood", mixed_good, mixed),
    ):
        records = extra or [(ingress, e.subject.encode(), e.value) for e in load]
        await publish_in_one_transaction(exchange.settings, records)
        decided = await wait_for_decisions(
            exchange.settings, {e.event_id for e in load}, within=120, alive=alive
        )
        rates[name], rates[f"{name} inputs"] = _rates(decided, load)

    quarantined = await exchange.read(
        exchange.settings.quarantine_topic, expected=len(bad), wait=60
    )
    assert stop_gracefully(routers.started["router"]) == 0, routers.tails()
    print(
        f"good events/s through the router: {rates['alone']:.0f} alone, "
        f"{rates['flood']:.0f} among as many bad ones "
        f"({rates['flood inputs']:.0f} inputs/s good and bad)"
    )
    reasons = Counter((r.value, dict(r.headers).get("msht-reason")) for r in quarantined)
    wanted = Counter((b.value, b.reason.encode()) for b in bad)
    assert reasons == wanted
    audit = [parse_record(v) for _, _, v in await committed_audit(exchange.settings)]
    assert sum(r.kind == "quarantine" for r in audit) == len(bad)
    await _assert_exactly_once(exchange, [*warm_up, *alone, *mixed_good], routers)


def _rates(records: list[AuditRecord], load: list[Published]) -> tuple[float, float]:
    """Decisions per second on ``load``, and audited inputs per second (any kind) over the
    same span, from the router's own decision times."""
    ids = {e.event_id for e in load}
    times = sorted(r.time for r in records if r.kind == "decision" and r.event_id in ids)
    first, last = times[0], times[-1]
    span = max((last - first).total_seconds(), 1e-3)
    inputs = sum(first <= r.time <= last for r in records)
    return (len(times) - 1) / span, (inputs - 1) / span


async def test_kafka_restarted_under_load_router_and_publisher_resume_without_loss_or_duplicate(
    settings: Settings, tmp_path: Path
) -> None:
    """Issue 7: on a private broker (the shared one is never touched), 1,200 events are
    published at 60/s; once the router has committed some, a burst of 800 more (other
    subjects) lands, and while the router is routing it Kafka is stopped, left down for a
    few seconds and started again. The steady publisher (idempotent, sending a chunk again
    when the broker does not acknowledge it) and the same router process carry on by
    themselves: the router never exits, and every guarantee holds for all 2,000 events.
    A chunk sent again may put an event on the ingress topic twice; the router
    de-duplicates it by event id."""
    async with (
        private_broker(tmp_path / "kafka") as broker,
        router_exchange(
            settings.model_copy(update={"bootstrap_servers": broker.bootstrap}),
            tmp_path / "state",
            partitions=PARTITIONS,
        ) as ex,
    ):
        routers = RouterProcesses(ex, tmp_path)
        try:
            steady, burst = good_events(ex, 1200), good_events(ex, 800)
            routers.spawn("router")
            alive = routers.alive("router")
            publishing = asyncio.create_task(
                publish_steadily(ex.settings, _ingress(ex), steady, rate=60, retry_for=120)
            )
            progress = await wait_for_progress(ex.settings, 150, within=60, alive=alive)
            await publish_steadily(ex.settings, _ingress(ex), burst, rate=100_000)
            await wait_for_progress(ex.settings, progress + 100, within=60, alive=alive)
            stopped = time.monotonic()
            await broker.run("stop")
            assert not publishing.done(), "the steady load ended before Kafka stopped"
            await asyncio.sleep(3)
            assert alive(), routers.tails()
            await broker.run("start")
            print(f"Kafka down for {time.monotonic() - stopped:.1f}s")
            resent = await publishing
            events = [*steady, *burst]
            await wait_for_decisions(
                ex.settings, {e.event_id for e in events}, within=120, alive=alive
            )
            assert stop_gracefully(routers.started["router"]) == 0, routers.tails()
            print(f"publisher sent {resent} chunks again")
            await _assert_exactly_once(ex, events, routers)
        finally:
            routers.kill_all()


async def test_transaction_outliving_the_transaction_timeout_is_routed_again_once(
    exchange: RouterExchange, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transaction open longer than ``transaction_timeout_ms`` (3 s here; 60 s by
    default, which a long broker outage or a stalled batch exceeds) is aborted by Kafka,
    and its producer fenced although no other router exists. The router (in process, so
    one batch can be held open) takes the partition up again by itself: the aborted batch
    and the 10 events published after it are routed, each once. Before the fix the
    partition stayed assigned but was never routed again until the next rebalance."""
    # The router's transactional producers are built in the Kafka seam's aiokafka module.
    monkeypatch.setattr(
        aio, "AIOKafkaProducer", functools.partial(AIOKafkaProducer, transaction_timeout_ms=3000)
    )
    held = asyncio.Event()
    commit_offsets = AIOKafkaProducer.send_offsets_to_transaction

    async def hold_first_batch(producer: AIOKafkaProducer, *args: Any, **kwargs: Any) -> Any:
        if not held.is_set():
            held.set()
            # The coordinator looks for expired transactions every 10 s.
            await asyncio.sleep(16)
        return await commit_offsets(producer, *args, **kwargs)

    monkeypatch.setattr(AIOKafkaProducer, "send_offsets_to_transaction", hold_first_batch)
    events = good_events(exchange, 20)
    exchange.start_router()
    await publish_steadily(exchange.settings, _ingress(exchange), events[:10], rate=1000)
    await asyncio.wait_for(held.wait(), 30)
    await publish_steadily(exchange.settings, _ingress(exchange), events[10:], rate=1000)
    await wait_for_decisions(exchange.settings, {e.event_id for e in events}, within=60)
    stats = await exchange.stop_router()
    assert stats.aborted_batches >= 1
    await _assert_exactly_once(exchange, events)
