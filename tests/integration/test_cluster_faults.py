"""The router on a replicated cluster of three, with brokers dying under it (issue 13).

The module starts its own three-node KRaft cluster (``kafka.sh cluster-start`` in a temporary
directory, on ports away from the shared broker; replication factor 3, ``min.insync.replicas``
2, unclean leader election off) and wipes it at the end. It fails, never skips, when the
cluster cannot start. Topics are created with three replicas; ``msht provision``'s reading of
the cluster (replicas, effective min ISR) is checked on the real thing.

The fault test drives ``msht router`` as its own process against the cluster, publishes a
steady load, SIGKILLs one broker and restarts it, then SIGKILLs the leader of the ingress
topic's partition 0 and restarts it, and checks with
:func:`tests.integration.fault_env.check_exactly_once`: every partner's committed deliveries
are exactly what the policy grants, each once, in order per subject; the audit chain
verifies with one decision per event. Sized to run in about two minutes on two cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from broker.errors import TransportError
from broker.kafka import clients as kafka
from broker.provision.apply import ClusterAdmin
from broker.provision.diff import ClusterState, diff
from broker.provision.plan import Naming, build_plan
from broker.settings import Settings
from broker.types import AgencyId
from tests.integration.cluster_env import (
    NODES,
    ClusterCommandError,
    LocalCluster,
    leader_of,
    local_cluster,
    wait_for_brokers,
    wait_for_full_isr,
    wait_for_new_leader,
)
from tests.integration.fault_env import (
    AGENCY,
    Published,
    RouterProcesses,
    check_exactly_once,
    good_events,
    publish_steadily,
    stop_gracefully,
    wait_for_decisions,
    wait_for_progress,
)
from tests.integration.router_env import router_exchange

PARTITIONS = 3
REPLICAS = 3
MIN_ISR = 2


@pytest.fixture(scope="module")
async def cluster(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalCluster]:
    """This module's own three-node cluster; stopped and deleted when the module ends."""
    directory = tmp_path_factory.mktemp("kafka-cluster")
    async with contextlib.AsyncExitStack() as stack:
        try:
            started = await stack.enter_async_context(local_cluster(directory))
            await wait_for_brokers(started.settings(settings), set(NODES), within=60)
        except (ClusterCommandError, AssertionError) as exc:
            pytest.fail(f"the three-node Kafka cluster did not start: {exc}", pytrace=False)
        yield started


async def _state_with(admin: ClusterAdmin, names: frozenset[str]) -> ClusterState:
    """The cluster's state once every broker's metadata lists ``names`` (a topic just
    created reaches the brokers' metadata a moment after the controller)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            state = await asyncio.to_thread(admin.state)
        except TransportError:
            # A broker that lists a new topic may not describe it yet (UNKNOWN_TOPIC_OR_PART
            # from another broker's metadata): the same moment, asked again.
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
            continue
        if names <= state.replication.keys() or time.monotonic() > deadline:
            return state
        await asyncio.sleep(0.5)


def _deployment(base: Settings) -> Settings:
    """``base`` with uuid-named topics, so each test provisions its own."""
    tag = uuid.uuid4().hex[:10]
    return base.model_copy(
        update={
            "ingress_prefix": f"c{tag}.ingress.",
            "delivery_prefix": f"c{tag}.deliver.",
            "audit_topic": f"c{tag}.audit",
            "quarantine_topic": f"c{tag}.quarantine",
            "held_topic": f"c{tag}.held",
            "decisions_topic": f"c{tag}.decisions",
        }
    )


async def test_provisioned_topics_on_the_cluster_have_three_replicas_and_min_isr_two(
    cluster: LocalCluster, settings: Settings
) -> None:
    """``msht provision``'s topics, created on the cluster with RF 3 and min ISR 2, read back
    as such, and a second run finds nothing to report."""
    s = _deployment(cluster.settings(settings))
    naming = Naming.from_settings(s, replication_factor=REPLICAS, min_insync_replicas=MIN_ISR)
    plan = build_plan(naming, partners=("cps",), agencies=("met-police",))
    admin = ClusterAdmin(s)
    await asyncio.to_thread(admin.create_topics, plan.topics)
    state = await _state_with(admin, plan.topic_names)
    names = sorted(plan.topic_names)
    assert {n: state.replication.get(n) for n in names} == dict.fromkeys(names, REPLICAS)
    assert {n: state.min_insync.get(n) for n in names} == dict.fromkeys(names, MIN_ISR)
    found = diff(plan, state, prune=False, admin_user=s.username)
    assert found.topics_report == ()
    assert sorted(found.topics_keep) == names


async def test_topics_with_one_replica_on_the_cluster_are_reported_by_provisioning(
    cluster: LocalCluster, settings: Settings
) -> None:
    """Topics made with one replica (as on the single local broker) fall short of RF 3: the
    provisioning diff reports each with its replica count and keeps none."""
    s = _deployment(cluster.settings(settings))
    naming = Naming.from_settings(s, replication_factor=REPLICAS, min_insync_replicas=MIN_ISR)
    plan = build_plan(naming, partners=("cps",), agencies=("met-police",))
    await kafka.ensure_topics(s, plan.topic_names, partitions=3, replication_factor=1)
    state = await _state_with(ClusterAdmin(s), plan.topic_names)
    found = diff(plan, state, prune=False, admin_user=s.username)
    reported = dict(found.topics_report)
    assert set(reported) == plan.topic_names
    assert all("has 1 replica," in why for why in reported.values())
    assert found.topics_keep == ()


async def _publish_until(
    stop: asyncio.Event, settings: Settings, topic: str, events: list[Published]
) -> list[Published]:
    """Publish ``events`` steadily (15/s, in chunks of 30) until ``stop`` is set or they run
    out; returns those published. The load so lasts as long as the faults take, whatever the
    machine's speed."""
    sent: list[Published] = []
    for start in range(0, len(events), 30):
        if stop.is_set():
            break
        chunk = events[start : start + 30]
        await publish_steadily(settings, topic, chunk, rate=15, retry_for=90)
        sent.extend(chunk)
    return sent


async def test_broker_killed_then_ingress_leader_killed_under_load_loses_and_duplicates_nothing(
    cluster: LocalCluster, settings: Settings, tmp_path: Path
) -> None:
    """Events published at 15/s through the router on the cluster. Once the router has
    audited some, a broker that does not lead ingress partition 0 is SIGKILLed; routing goes
    on with two nodes, and the broker is restarted and caught up. Then the leader of ingress
    partition 0 is SIGKILLed, routing goes on, and it is restarted; the load stops once the
    router has audited more after that. Nothing is lost or
    duplicated for any partner and the audit chain is intact. The publisher re-sends a chunk
    the cluster did not acknowledge (an event may then be on the ingress topic twice, with
    one id, which the router de-duplicates)."""
    base = cluster.settings(settings)
    async with router_exchange(
        base, tmp_path / "state", partitions=PARTITIONS, replication_factor=REPLICAS
    ) as ex:
        names = ex.topics()
        admin = ClusterAdmin(ex.settings)
        assert await asyncio.to_thread(admin.replication, names) == dict.fromkeys(names, REPLICAS)
        assert await asyncio.to_thread(admin.min_insync, names) == dict.fromkeys(names, MIN_ISR)
        ingress = ex.settings.ingress_topic(AgencyId(AGENCY))
        routers = RouterProcesses(ex, tmp_path)
        try:
            stop = asyncio.Event()
            routers.spawn("router")
            alive = routers.alive("router")
            publishing = asyncio.create_task(
                _publish_until(stop, ex.settings, ingress, good_events(ex, 2000))
            )
            progress = await wait_for_progress(ex.settings, 60, within=90, alive=alive)
            started = time.monotonic()

            leader = await leader_of(ex.settings, ingress, 0)
            bystander = next(n for n in NODES if n != leader)
            await cluster.kill_node(bystander)
            progress = await wait_for_progress(ex.settings, progress + 40, within=90, alive=alive)
            assert not publishing.done(), "the load ran out before the first broker came back"
            await cluster.start_node(bystander)
            await wait_for_brokers(ex.settings, set(NODES), within=60)
            await wait_for_full_isr(ex.settings, within=60)
            print(f"node {bystander} (no leader of ingress-0) killed and back in sync after "
                  f"{time.monotonic() - started:.1f}s, {progress} audited")  # fmt: skip

            started = time.monotonic()
            leader = await leader_of(ex.settings, ingress, 0)
            await cluster.kill_node(leader)
            moved_to = await wait_for_new_leader(ex.settings, ingress, 0, leader, within=30)
            progress = await wait_for_progress(ex.settings, progress + 40, within=90, alive=alive)
            assert not publishing.done(), "the load ran out before the leader came back"
            await cluster.start_node(leader)
            await wait_for_full_isr(ex.settings, within=60)
            await wait_for_progress(ex.settings, progress + 30, within=60, alive=alive)
            stop.set()
            print(f"leader {leader} of ingress-0 killed (now led by {moved_to}) and back in "
                  f"sync after {time.monotonic() - started:.1f}s, {progress} audited")  # fmt: skip

            events = await publishing
            await wait_for_decisions(
                ex.settings, {e.event_id for e in events}, within=120, alive=alive
            )
            assert stop_gracefully(routers.started["router"]) == 0, routers.tails()
            findings = await check_exactly_once(ex, events)
            print(
                f"{len(events)} events, {findings.deliveries} "
                f"deliveries, {findings.distinct_decisions} decisions checked"
            )
            assert findings.problems() == {}, routers.tails()
            assert findings.distinct_decisions == len(events)
            assert findings.deliveries == sum(len(e.grants) for e in events)
        finally:
            routers.kill_all()
