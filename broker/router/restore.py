"""Rebuild a partition's router state from the audit topic after it is assigned.

The audit topic is the router's only memory: for each chain (one per input partition) it
holds the chain head to continue from and the event ids already decided, which is what
de-duplicates a re-published event. The read is ``read_committed`` and runs up to the
high watermark observed at the start — not only to the last stable offset, because another
router's open transaction on a different chain can hold that back while committed records
of *this* chain lie beyond it.

Records of a chain are keyed by the chain id, so they all sit in one audit partition (the
producer's default partitioner; provisioning never changes a topic's partition count). The
read goes **backwards** from the end of that partition in growing chunks and stops once
each chain has its head and ``window`` decisions (or the partition's start is reached), so a
restart costs time in proportion to the de-duplication window, not to the audit history.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from broker.audit import ChainHead, parse_record
from broker.errors import AuditChainError, TransportError
from broker.kafka.partitioner import default_partition
from broker.kafka.protocols import KafkaClients
from broker.kafka.records import TopicPartition
from broker.types import EventId


class DedupWindow:
    """The most recent ``capacity`` decided event ids of one chain, with their content digests.

    Bounded so the router's memory does not grow with the number of events it has seen; a
    re-publication is expected within minutes to hours of the original, far inside the window.
    The digest (see :func:`broker.router.route.content_digest`) tells a re-publication of
    the same event from different content re-using a decided id; it is ``None`` for ids
    restored from audit records written before digests were recorded.
    """

    def __init__(
        self,
        capacity: int,
        initial: Iterable[EventId] = (),
        digests: Mapping[EventId, str] | None = None,
    ) -> None:
        self._capacity = capacity
        self._ids: OrderedDict[EventId, str | None] = OrderedDict()
        known = digests or {}
        for event_id in initial:
            self.add(event_id, known.get(event_id))

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def digest_of(self, event_id: EventId) -> str | None:
        """The content digest ``event_id`` was decided with (``None`` if not recorded)."""
        return self._ids.get(event_id)

    def add(self, event_id: EventId, digest: str | None = None) -> None:
        """Remember ``event_id`` (and its content digest), forgetting the oldest when full."""
        self._ids[event_id] = digest
        self._ids.move_to_end(event_id)
        while len(self._ids) > self._capacity:
            self._ids.popitem(last=False)

    def discard(self, event_id: EventId) -> None:
        """Forget ``event_id`` (its decision was rolled back)."""
        self._ids.pop(event_id, None)


class DecidedIds:
    """Every live partition's de-duplication window in one router process, by chain.

    A record is on the partition its subject hashes to, so one event's copies meet one
    window; an id that turns up on a *different* chain (another subject, or another
    agency's topic) is a different event re-using a decided id. This index lets each
    partition ask the others. Windows are held weakly: a revoked partition's window goes
    with its processor, so memory stays bounded by the partitions this process owns.
    """

    def __init__(self) -> None:
        self._windows: weakref.WeakValueDictionary[str, DedupWindow] = weakref.WeakValueDictionary()

    def register(self, chain: str, window: DedupWindow) -> None:
        """``window`` is ``chain``'s from now on."""
        self._windows[chain] = window

    def chain_holding(self, event_id: EventId, *, besides: str) -> str | None:
        """A chain other than ``besides`` whose window holds ``event_id``, if any."""
        for chain, window in list(self._windows.items()):
            if chain != besides and event_id in window:
                return chain
        return None


@dataclass
class ChainState:
    """What the audit topic says about one chain."""

    head: ChainHead
    decided: list[EventId] = field(default_factory=list)
    digests: dict[EventId, str] = field(default_factory=dict)
    """Content digest of each decided id whose audit record carries one."""


ReadRange = Callable[[int, int], Awaitable[list[bytes]]]
"""Committed record values of one partition with offsets in ``[start, end)``, in order."""


def partition_of(chain: str, partitions: Sequence[int]) -> int:
    """The audit partition the router's producer writes ``chain``'s records to."""
    ordered = sorted(partitions)
    return ordered[default_partition(chain.encode("utf-8"), len(ordered))]


async def scan_back(
    read_range: ReadRange,
    end: int,
    chains: Iterable[str],
    *,
    window: int,
    chunk: int = 2_000,
) -> dict[str, ChainState]:
    """Head and last ``window`` decisions of each of ``chains`` in one partition ending at ``end``.

    Reads ``[end - chunk, end)``, then larger chunks (up to ``8 * chunk``) further back,
    until every chain has its head and ``window`` decisions, or offset 0 is reached.
    """
    states = {c: ChainState(head=ChainHead.genesis(c)) for c in chains}
    headed: set[str] = set()
    older: dict[str, list[list[EventId]]] = {c: [] for c in states}
    digests: dict[str, dict[EventId, str]] = {c: {} for c in states}
    counts = dict.fromkeys(states, 0)

    def satisfied(chain: str) -> bool:
        return chain in headed and counts[chain] >= window

    size = chunk
    while end > 0 and not all(satisfied(c) for c in states):
        start = max(0, end - size)
        newest: dict[str, ChainHead] = {}
        found: dict[str, list[EventId]] = {c: [] for c in states}
        for value in await read_range(start, end):
            try:
                record = parse_record(value)
            except AuditChainError:
                continue  # `msht audit verify` reports unreadable records; restoring skips them
            if record.chain not in states:
                continue
            newest[record.chain] = ChainHead(record.chain, record.seq + 1, record.digest)
            if record.kind == "decision":
                found[record.chain].append(record.event_id)
                if record.content_digest is not None:
                    # An id is decided once per chain while it is in the window.
                    digests[record.chain].setdefault(record.event_id, record.content_digest)
        for chain, head in newest.items():
            if chain not in headed:
                states[chain].head = head
                headed.add(chain)
        for chain, ids in found.items():
            if ids:
                older[chain].append(ids)
                counts[chain] += len(ids)
        # Grow the chunk (fewer round trips) but keep each one's values modest in memory.
        end, size = start, min(size * 2, chunk * 8)
    for chain, chunks in older.items():
        ids = [event_id for ids in reversed(chunks) for event_id in ids]
        states[chain].decided = ids[-window:]
        kept = set(states[chain].decided)
        states[chain].digests = {i: d for i, d in digests[chain].items() if i in kept}
    return states


async def read_chain_states(
    clients: KafkaClients,
    audit_topic: str,
    chains: Iterable[str],
    *,
    window: int,
    timeout_s: float = 120.0,
) -> dict[str, ChainState]:
    """Read the audit topic back from its end and return each chain's head and recent decisions."""
    wanted = list(chains)
    states = {c: ChainState(head=ChainHead.genesis(c)) for c in wanted}
    async with clients.partition_reader(timeout_s) as reader:
        partitions = sorted(await reader.partitions(audit_topic))
        if not partitions:
            raise TransportError(f"audit topic {audit_topic!r} does not exist or is not readable")
        by_partition: dict[int, list[str]] = {}
        for chain in wanted:
            by_partition.setdefault(partition_of(chain, partitions), []).append(chain)
        tps = [TopicPartition(audit_topic, p) for p in by_partition]
        high = await reader.end_offsets(tps) if tps else {}
        for tp in tps:
            if high[tp] <= 0:
                continue  # nothing written yet: every chain of it starts at genesis

            async def read_range(start: int, end: int, tp: TopicPartition = tp) -> list[bytes]:
                return await reader.read(tp, start, end)

            states.update(
                await scan_back(read_range, high[tp], by_partition[tp.partition], window=window)
            )
    return states
