"""Restoring a chain's head and recent decisions by reading the audit partition backwards."""

from __future__ import annotations

from datetime import UTC, datetime

from broker.audit import AuditChain, ChainHead, RecipientOutcome
from broker.audit.record import RecordKind
from broker.router.restore import DedupWindow, partition_of, scan_back
from broker.types import AgencyId, EventId, Outcome, PartnerId, Subject

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


class Log:
    """One audit partition's committed values, with a count of how many were read."""

    def __init__(self) -> None:
        self.values: list[bytes] = []
        self.read = 0
        self.chains: dict[str, AuditChain] = {}

    def append(
        self,
        chain: str,
        event_id: str,
        kind: RecordKind = "decision",
        content_digest: str | None = None,
    ) -> None:
        builder = self.chains.setdefault(chain, AuditChain(ChainHead.genesis(chain), router="r"))
        record = builder.append(
            time=T0,
            event_id=EventId(event_id),
            source=AgencyId("met-police"),
            subject=Subject("s"),
            outcomes=[RecipientOutcome(PartnerId("nca"), Outcome.WITHHOLD, "default-deny")],
            policy_version="sha256:" + "00" * 32,
            kind=kind,
            content_digest=content_digest,
        )
        self.values.append(record.to_bytes())

    async def read_range(self, start: int, end: int) -> list[bytes]:
        self.read += end - start
        return self.values[start:end]


async def test_head_is_the_last_record_of_the_chain() -> None:
    log = Log()
    for i in range(10):
        log.append("a/0", f"e{i}")
    [state] = (await scan_back(log.read_range, len(log.values), ["a/0"], window=100)).values()
    assert state.head == log.chains["a/0"].head


async def test_chain_without_records_starts_at_genesis() -> None:
    log = Log()
    log.append("a/0", "e0")
    states = await scan_back(log.read_range, len(log.values), ["b/0"], window=100)
    assert states["b/0"].head == ChainHead.genesis("b/0")
    assert states["b/0"].decided == []


async def test_decisions_are_the_last_window_in_order() -> None:
    log = Log()
    for i in range(50):
        log.append("a/0", f"e{i}")
    states = await scan_back(log.read_range, len(log.values), ["a/0"], window=7, chunk=4)
    assert states["a/0"].decided == [EventId(f"e{i}") for i in range(43, 50)]


async def test_quarantine_and_duplicate_records_are_not_decisions() -> None:
    log = Log()
    log.append("a/0", "e0")
    log.append("a/0", "junk", kind="quarantine")
    log.append("a/0", "e0", kind="duplicate")
    states = await scan_back(log.read_range, len(log.values), ["a/0"], window=10)
    assert states["a/0"].decided == [EventId("e0")]
    assert states["a/0"].head.next_seq == 3


async def test_reading_stops_once_the_window_is_full() -> None:
    log = Log()
    for i in range(10_000):
        log.append("a/0", f"e{i}")
    await scan_back(log.read_range, len(log.values), ["a/0"], window=100, chunk=50)
    assert log.read < 1_000


async def test_other_chains_in_the_partition_are_passed_over() -> None:
    log = Log()
    for i in range(20):
        log.append("a/0" if i % 2 else "b/0", f"e{i}")
    states = await scan_back(log.read_range, len(log.values), ["a/0"], window=100, chunk=3)
    assert states["a/0"].decided == [EventId(f"e{i}") for i in range(1, 20, 2)]
    assert "b/0" not in states


def test_a_chain_always_maps_to_the_same_audit_partition() -> None:
    partitions = [0, 1, 2]
    assert partition_of("ingress.met-police/0", partitions) == partition_of(
        "ingress.met-police/0", partitions
    )
    assert {partition_of(f"ingress.a{i}/0", partitions) for i in range(30)} == {0, 1, 2}


async def test_content_digests_of_decisions_are_restored() -> None:
    log = Log()
    for i in range(5):
        log.append("a/0", f"e{i}", content_digest=f"{i:02d}" * 32)
    states = await scan_back(log.read_range, len(log.values), ["a/0"], window=3, chunk=2)
    assert states["a/0"].digests == {EventId(f"e{i}"): f"{i:02d}" * 32 for i in (2, 3, 4)}


async def test_decision_written_before_digests_existed_restores_without_one() -> None:
    log = Log()
    log.append("a/0", "old")
    window = DedupWindow(
        10, (await scan_back(log.read_range, 1, ["a/0"], window=10))["a/0"].decided
    )
    assert "old" in window
    assert window.digest_of(EventId("old")) is None
