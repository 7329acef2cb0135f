"""The audit trail read back from the real Kafka verifies, and tampering in it is named."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from broker.audit import (
    AuditChain,
    ChainHead,
    RecipientOutcome,
    body_digest,
    canonical_json,
    chain_id,
    verify_chain,
)
from broker.audit.reader import read_audit_topic
from broker.cli import main
from broker.errors import TransportError
from broker.kafka import clients as kafka
from broker.settings import Settings
from broker.types import AgencyId, EventId, Outcome, PartnerId, Subject
from tests.integration.conftest import UniqueTopic

T0 = datetime(2026, 11, 28, 5, 0, tzinfo=UTC)
MET = chain_id("ingress.met-police", 0)
CPS = chain_id("ingress.cps", 1)


def _append(chain: AuditChain, i: int) -> bytes:
    record = chain.append(
        time=T0 + timedelta(seconds=i),
        event_id=EventId(f"{chain.head.chain}-ev-{i}"),
        source=AgencyId("met-police"),
        subject=Subject(f"NRM-2026-{i:06d}"),
        outcomes=[
            RecipientOutcome(PartnerId("nca"), Outcome.DELIVER, "referrals-to-nca", view="full")
        ],
        policy_version="sha256:" + "cd" * 32,
        input_offset=i,
    )
    return record.to_bytes()


def _new_chain(chain: str) -> AuditChain:
    return AuditChain(ChainHead.genesis(chain), router="router-it@test")


async def _commit(producer: AIOKafkaProducer, topic: str, chain: str, values: list[bytes]) -> None:
    async with producer.transaction():
        for value in values:
            await producer.send(topic, value, key=chain.encode())


def _tx_id() -> str:
    return f"test-audit-{uuid.uuid4().hex}"


async def test_committed_records_are_read_back_in_order_and_verify(
    settings: Settings, unique_topic: UniqueTopic
) -> None:
    topic = await unique_topic("audit")
    met, cps = _new_chain(MET), _new_chain(CPS)
    committed: list[bytes] = []
    async with kafka.transactional_producer(settings, _tx_id()) as producer:
        for i in range(10):
            chain = met if i % 3 else cps
            value = _append(chain, i)
            await _commit(producer, topic, chain.head.chain, [value])
            committed.append(value)
        # An aborted decision leaves nothing a read_committed reader sees, and the chain
        # continues from the head taken before it.
        before = met.head
        await producer.begin_transaction()
        await producer.send(topic, _append(met, 99), key=MET.encode())
        await producer.abort_transaction()
        met.reset(before)
        value = _append(met, 10)
        await _commit(producer, topic, MET, [value])
        committed.append(value)

    progress: list[tuple[int, int]] = []
    entries = await read_audit_topic(
        settings, topic, progress=lambda done, total: progress.append((done, total))
    )

    assert [entry.value for entry in entries] == committed
    assert [entry.offset for entry in entries] == sorted(entry.offset for entry in entries)
    report = verify_chain((entry.offset, entry.value) for entry in entries)
    assert report.ok, report.breaks
    assert report.heads[MET] == met.head
    assert report.heads[CPS] == cps.head
    done, total = progress[-1]
    assert done == total
    assert total > len(committed)  # transaction markers and the aborted record count too


async def test_records_committed_behind_an_open_transaction_are_read(
    settings: Settings, unique_topic: UniqueTopic
) -> None:
    topic = await unique_topic("audit")
    met, cps = _new_chain(MET), _new_chain(CPS)
    async with (
        kafka.transactional_producer(settings, _tx_id()) as slow,
        kafka.transactional_producer(settings, _tx_id()) as fast,
    ):
        await slow.begin_transaction()
        held = _append(met, 0)
        await slow.send_and_wait(topic, held, key=MET.encode())
        behind = [_append(cps, i) for i in range(3)]
        await _commit(fast, topic, CPS, behind)

        async def commit_later() -> None:
            await asyncio.sleep(2)
            await slow.commit_transaction()

        # The last stable offset stops at the open transaction; a reader that stopped there
        # would return nothing. Reading to the high watermark waits for it to end.
        committer = asyncio.create_task(commit_later())
        entries = await read_audit_topic(settings, topic, timeout_s=30)
        await committer

    assert [entry.value for entry in entries] == [held, *behind]
    assert verify_chain(entry.value for entry in entries).ok


async def test_a_tampered_record_produced_in_the_middle_is_reported(
    settings: Settings, unique_topic: UniqueTopic
) -> None:
    topic = await unique_topic("audit")
    met = _new_chain(MET)
    values = [_append(met, i) for i in range(5)]
    document = json.loads(values[2])
    document["outcomes"][0]["outcome"] = "withheld"
    document["outcomes"][0]["view"] = None
    values[2] = canonical_json(document)  # digest left as the router wrote it
    async with kafka.producer(settings) as producer:
        for value in values:
            await producer.send_and_wait(topic, value, key=MET.encode())

    entries = await read_audit_topic(settings, topic)
    report = verify_chain((entry.offset, entry.value) for entry in entries)

    assert len(report.breaks) == 1
    broken = report.breaks[0]
    assert (broken.chain, broken.seq, broken.offset) == (MET, 2, entries[2].offset)
    assert "the record was altered" in broken.reason


async def test_a_missing_audit_topic_is_a_transport_error(settings: Settings) -> None:
    with pytest.raises(TransportError, match="does not exist"):
        await read_audit_topic(settings, f"audit-absent-{uuid.uuid4().hex}")


async def _produce(settings: Settings, topic: str, values: list[bytes]) -> None:
    async with kafka.producer(settings) as producer:
        for value in values:
            await producer.send_and_wait(topic, value, key=MET.encode())


async def test_cli_verify_names_a_rewritten_record_on_the_topic(
    settings: Settings,
    unique_topic: UniqueTopic,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("MSHT_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("MSHT_TRUST_STORE", raising=False)
    topic = await unique_topic("audit")
    met = _new_chain(MET)
    values = [_append(met, i) for i in range(4)]
    forged = json.loads(values[1])
    forged["subject"] = "NRM-2026-999999"
    forged["digest"] = body_digest(forged)  # a rewrite with a fresh digest
    values[1] = canonical_json(forged)
    await _produce(settings, topic, values)

    # The CLI runs its own event loop, so it runs in a thread here.
    code = await asyncio.to_thread(main, ["audit", "verify", "--topic", topic])

    out = capsys.readouterr().out
    assert code == 1
    assert f"BREAK chain {MET}, seq 2, event {MET}-ev-2, partition 0 offset 2" in out
    assert "prev_digest does not match" in out


async def test_cli_verify_of_an_intact_topic_exits_zero(
    settings: Settings,
    unique_topic: UniqueTopic,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("MSHT_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("MSHT_TRUST_STORE", raising=False)
    topic = await unique_topic("audit")
    met = _new_chain(MET)
    await _produce(settings, topic, [_append(met, i) for i in range(3)])

    code = await asyncio.to_thread(main, ["audit", "verify", "--topic", topic])

    assert code == 0
    assert "audit trail intact: 3 records in 1 chains" in capsys.readouterr().out
