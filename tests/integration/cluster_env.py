"""A private three-node Kafka cluster for tests (``kafka.sh cluster-*``), and what they ask of it.

The cluster runs in the test's own directory on ports ``kafka.sh`` chooses (never the shared
broker's 9092-9094); :func:`local_cluster` starts it and wipes it afterwards. Node ``N`` is
Kafka's ``node.id`` ``N``, so a partition's leader id names the node to kill.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from broker.kafka import clients as kafka
from broker.settings import Settings
from tests.integration.router_env import REPO

KAFKA_SH = REPO / "deploy" / "kafka" / "kafka.sh"
NODES = (1, 2, 3)


class ClusterCommandError(AssertionError):
    """A ``kafka.sh cluster-*`` command failed; the message carries its output."""


@dataclass
class LocalCluster:
    """Three combined broker+controller nodes on loopback, in ``directory``."""

    directory: Path
    bootstrap: str
    """``host:port,host:port,host:port`` of the three SASL_PLAINTEXT listeners."""

    async def run(self, command: str, *args: str) -> str:
        """``kafka.sh COMMAND ARGS --dir DIRECTORY``; its output, or raise with it."""
        return await run_kafka_sh(command, *args, "--dir", str(self.directory))

    async def kill_node(self, node: int) -> None:
        """SIGKILL node ``node``, as a crash would."""
        await self.run("cluster-kill-node", str(node))

    async def start_node(self, node: int) -> None:
        """Start node ``node`` again; returns once it answers."""
        await self.run("cluster-start-node", str(node))

    def settings(self, base: Settings) -> Settings:
        """``base`` pointed at this cluster."""
        return base.model_copy(update={"bootstrap_servers": self.bootstrap})


async def run_kafka_sh(command: str, *args: str) -> str:
    """Run ``kafka.sh``; raise :class:`ClusterCommandError` with its output when it fails."""
    process = await asyncio.create_subprocess_exec(
        "bash",
        str(KAFKA_SH),
        command,
        *args,
        env={**os.environ, "MSHT_KAFKA_START_TIMEOUT": "120"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise ClusterCommandError(
            f"kafka.sh {command} {' '.join(args)} exited {process.returncode}:\n"
            f"{err.decode(errors='replace')[-4000:]}"
        )
    return out.decode()


@contextlib.asynccontextmanager
async def local_cluster(directory: Path) -> AsyncIterator[LocalCluster]:
    """Start a three-node cluster in ``directory``; stop it and delete it afterwards."""
    try:
        out = await run_kafka_sh("cluster-start", "--dir", str(directory))
        cluster = LocalCluster(directory, out.strip().splitlines()[-1])
        yield cluster
    finally:
        with contextlib.suppress(ClusterCommandError):
            await run_kafka_sh("cluster-wipe", "--dir", str(directory))


async def broker_ids(settings: Settings) -> set[int]:
    """The node ids of the brokers the cluster's metadata lists now."""
    async with kafka.admin_client(settings) as admin:
        described = await admin.describe_cluster()
    return {int(b["node_id"]) for b in described["brokers"]}


@dataclass(frozen=True)
class PartitionState:
    """One partition as the cluster's metadata describes it now."""

    topic: str
    partition: int
    leader: int
    replicas: frozenset[int]
    isr: frozenset[int]


async def partitions(settings: Settings, topics: list[str] | None = None) -> list[PartitionState]:
    """Every partition of ``topics`` (all topics, internal ones included, when None)."""
    async with kafka.admin_client(settings) as admin:
        described = await admin.describe_topics(topics)
    return [
        PartitionState(
            t["topic"], p["partition"], p["leader"], frozenset(p["replicas"]), frozenset(p["isr"])
        )
        for t in described
        if not t["error_code"]
        for p in t["partitions"]
    ]


async def leader_of(settings: Settings, topic: str, partition: int) -> int:
    """The node id that leads ``topic``'s ``partition``."""
    for p in await partitions(settings, [topic]):
        if p.partition == partition:
            return p.leader
    raise AssertionError(f"{topic} has no partition {partition}")


async def wait_for_new_leader(
    settings: Settings, topic: str, partition: int, old: int, *, within: float
) -> int:
    """Wait until ``topic``'s ``partition`` is led by a node other than ``old``; return it."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            leader = await leader_of(settings, topic, partition)
            if leader not in (old, -1):
                return leader
        await asyncio.sleep(0.5)
    raise AssertionError(f"{topic}-{partition} still led by node {old} (or none) after {within}s")


async def wait_for_brokers(settings: Settings, wanted: set[int], *, within: float) -> None:
    """Wait until exactly the brokers ``wanted`` are registered (a killed one is fenced)."""
    deadline = time.monotonic() + within
    seen: set[int] = set()
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            seen = await broker_ids(settings)
            if seen == wanted:
                return
        await asyncio.sleep(0.5)
    raise AssertionError(f"brokers {sorted(seen)} registered, not {sorted(wanted)}, in {within}s")


async def wait_for_full_isr(settings: Settings, *, within: float) -> None:
    """Wait until every replica of every partition (internal topics too) is in sync."""
    deadline = time.monotonic() + within
    lagging: list[str] = []
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            described = await partitions(settings)
            lagging = [f"{p.topic}-{p.partition}" for p in described if p.isr != p.replicas]
            if not lagging:
                return
        await asyncio.sleep(0.5)
    raise AssertionError(f"partitions still out of sync after {within}s: {lagging[:10]}")
