"""``msht policy diff --replay``: re-decide recorded ingress traffic under two policies.

Reads every committed record the ingress topics (``<ingress_prefix>*``) still retain,
opens each in memory exactly as the router admits it (its keys, the trust store, the
broker's append time), and compares the current and the proposed policy's decisions with
:func:`broker.policy.diff.redecide`. Nothing is written: no offsets committed, no group
joined, no output produced. Records the router would quarantine are counted, not decided.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka.structs import TopicPartition

from broker.crypto.trust_signature import trust_store_from_settings
from broker.kafka import clients as kafka
from broker.policy import LoadedPolicy
from broker.policy.diff import Redecided, redecide
from broker.router.route import Arrival, Quarantined, RouteConfig, admit
from broker.router.service import route_config
from broker.settings import Settings

_BATCH = 500


@dataclass
class Replay:
    """What re-deciding the retained traffic found."""

    events: int = 0
    """Ingress records that the router would admit (each decided under both policies)."""
    quarantined: int = 0
    """Ingress records the router would quarantine (not decided under either)."""
    differences: list[Redecided] = field(default_factory=list)


async def _ingress_partitions(settings: Settings) -> list[TopicPartition]:
    async with kafka.admin_client(settings) as admin:
        described = await admin.describe_topics()
    return sorted(
        (
            TopicPartition(entry["topic"], p["partition"])
            for entry in described
            if str(entry.get("topic", "")).startswith(settings.ingress_prefix)
            and entry.get("error_code") == 0
            for p in entry.get("partitions", ())
        ),
        key=lambda tp: (tp.topic, tp.partition),
    )


async def replay(
    settings: Settings,
    current: LoadedPolicy,
    proposed: LoadedPolicy,
    *,
    timeout_s: float = 60.0,
) -> Replay:
    """Re-decide the retained ingress records under ``current`` and ``proposed``."""
    trust = trust_store_from_settings(settings, component="policy-diff")
    config = route_config(settings, current, trust.store, trust.digest)
    partitions = await _ingress_partitions(settings)
    counts: dict[str, int] = {}
    for tp in partitions:
        counts[tp.topic] = counts.get(tp.topic, 0) + 1
    result = Replay()
    if not partitions:
        return result
    async with kafka.consumer(settings) as client:
        end: dict[TopicPartition, int] = await client.end_offsets(partitions)
        client.assign(partitions)
        await client.seek_to_beginning(*partitions)
        pending = {tp for tp in partitions if end[tp] > 0}
        for tp in list(pending):
            if await client.position(tp) >= end[tp]:
                pending.discard(tp)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while pending and loop.time() < deadline:
            batches = await client.getmany(*pending, timeout_ms=500, max_records=_BATCH)
            for tp, records in batches.items():
                for record in records:
                    if record.offset >= end[tp] or record.value is None:
                        continue
                    arrival = Arrival(
                        topic=tp.topic,
                        partition=tp.partition,
                        partitions=counts[tp.topic],
                        key=record.key,
                        timestamp_ms=record.timestamp,
                        timestamp_type=record.timestamp_type,
                    )
                    _decide(result, config, arrival, record.value, current, proposed)
            for tp in list(pending):
                if await client.position(tp) >= end[tp]:
                    pending.discard(tp)
    return result


def _decide(
    result: Replay,
    config: RouteConfig,
    arrival: Arrival,
    value: bytes,
    current: LoadedPolicy,
    proposed: LoadedPolicy,
) -> None:
    # Decided as of the broker's append time, as the router did when the record arrived.
    when = datetime.fromtimestamp(arrival.timestamp_ms / 1000, UTC)
    admitted = admit(config, arrival, value, when)
    if isinstance(admitted, Quarantined):
        result.quarantined += 1
        return
    result.events += 1
    result.differences.extend(redecide(current, proposed, admitted.facts, when))


__all__ = ["Replay", "replay"]
