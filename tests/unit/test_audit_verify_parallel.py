"""``verify_chain`` with ``jobs`` > 1: the record-local checks in worker processes, the links
in order here, and the very same report as in one process, whatever is broken where."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

import broker.audit.verify as verify_module
from broker.audit import (
    AuditChain,
    ChainHead,
    ChainReport,
    RecipientOutcome,
    RecordSigner,
    chain_id,
    parse_record,
    verify_chain,
)
from broker.errors import AuditWorkerError, ConfigError
from broker.types import AgencyId, EventId, KeyId, Outcome, PartnerId, Subject

T0 = datetime(2026, 11, 28, 5, 0, tzinfo=UTC)
CHAINS = (chain_id("ingress.met-police", 0), chain_id("ingress.met-police", 1))
KEY = Ed25519PrivateKey.generate()
SIGNER = RecordSigner(KeyId("router-key-1"), KEY)
KEYS: dict[KeyId, Ed25519PublicKey] = {SIGNER.key_id: KEY.public_key()}
COUNT = 9
"""Records in the small trail: with chunks of 2, faults fall at the start, middle and end of
chunks and on both sides of every chunk boundary."""


def _trail(count: int = COUNT, signer: RecordSigner = SIGNER) -> list[bytes]:
    """Two chains interleaved, as two input partitions' decisions are on the audit topic."""
    builders = [AuditChain(ChainHead.genesis(c), router="router-a", signer=signer) for c in CHAINS]
    out = []
    for i in range(count):
        record = builders[i % 2].append(
            time=T0 + timedelta(seconds=i),
            event_id=EventId(f"ev-{i}"),
            source=AgencyId("met-police"),
            subject=Subject(f"NRM-{i}"),
            outcomes=[RecipientOutcome(PartnerId("cps"), Outcome.DELIVER, "r-cps", view="full")],
            policy_version="sha256:" + "ab" * 32,
            input_offset=i // 2,
        )
        out.append(record.to_bytes())
    return out


@pytest.fixture(autouse=True)
def _small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Parallel from the first record, two records per worker task, so a trail of a few
    # records crosses many chunk boundaries.
    monkeypatch.setattr(verify_module, "PARALLEL_MIN_RECORDS", 1)
    monkeypatch.setattr(verify_module, "_CHUNK", 2)


def _canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def _bad_signature(trail: list[bytes], i: int) -> None:
    forged = RecordSigner(SIGNER.key_id, Ed25519PrivateKey.generate())
    document = json.loads(trail[i])
    document["signature"] = forged.sign(document["digest"])
    trail[i] = _canonical(document)


def _altered(trail: list[bytes], i: int) -> None:
    document = json.loads(trail[i])
    document["subject"] = "NRM-altered"
    trail[i] = _canonical(document)


def _relinked(trail: list[bytes], i: int) -> None:
    # A record rewritten with a fresh digest and signature by the router's own key: only
    # its successor's link can tell.
    record = parse_record(trail[i])
    head = ChainHead(record.chain, record.seq, record.prev_digest)
    chain = AuditChain(head, router="router-a", signer=SIGNER)
    trail[i] = chain.append(
        time=record.time,
        event_id=EventId("ev-rewritten"),
        source=record.source,
        subject=record.subject,
        outcomes=record.outcomes,
        policy_version=record.policy_version,
        input_offset=record.input_offset,
    ).to_bytes()


def _deleted(trail: list[bytes], i: int) -> None:
    del trail[i]


def _replayed(trail: list[bytes], i: int) -> None:
    trail.append(trail[i])


def _unreadable(trail: list[bytes], i: int) -> None:
    trail[i] = b"{not json"


def _huge_integer(trail: list[bytes], i: int) -> None:
    trail[i] = trail[i].replace(b'"seq":', b'"seq":' + b"9" * 5000, 1)


def _not_canonical(trail: list[bytes], i: int) -> None:
    trail[i] = trail[i].replace(b'"chain":', b'"chain": ', 1)


FAULTS: dict[str, Callable[[list[bytes], int], None]] = {
    "bad signature": _bad_signature,
    "altered content": _altered,
    "relinked": _relinked,
    "deleted": _deleted,
    "replayed": _replayed,
    "unreadable": _unreadable,
    "huge integer": _huge_integer,
    "not canonical": _not_canonical,
}


def _cases() -> Iterator[tuple[str, int]]:
    for fault in FAULTS:
        for i in range(COUNT):
            yield fault, i


def _both(
    trail: Sequence[bytes | tuple[int, bytes]], **kwargs: Any
) -> tuple[ChainReport, ChainReport]:
    return verify_chain(trail, jobs=1, **kwargs), verify_chain(trail, jobs=2, **kwargs)


def test_an_intact_trail_gives_the_same_report_in_parallel() -> None:
    serial, parallel = _both(_trail(), router_keys=KEYS)
    assert serial.ok
    assert parallel == serial


@pytest.mark.parametrize(("fault", "position"), list(_cases()))
def test_a_fault_anywhere_gives_the_same_report_in_parallel(fault: str, position: int) -> None:
    trail = _trail()
    FAULTS[fault](trail, position)
    serial, parallel = _both(trail, router_keys=KEYS)
    # A chain's last record rewritten with a fresh signed digest, or cut off, has no
    # successor to tell (only a noted head can).
    last = position >= COUNT - len(CHAINS)
    assert serial.ok == (fault in {"relinked", "deleted"} and last)
    assert parallel == serial


@pytest.mark.parametrize("position", range(COUNT))
def test_a_bad_signature_is_located_at_its_record_in_parallel(position: int) -> None:
    trail = _trail()
    _bad_signature(trail, position)
    report = verify_chain(trail, router_keys=KEYS, jobs=2)
    assert [(b.index, b.event_id) for b in report.breaks] == [(position, f"ev-{position}")]
    tally = report.tallies[CHAINS[position % 2]]
    assert (tally.signed - tally.valid) == 1


@pytest.mark.parametrize(("fault", "position"), list(_cases()))
def test_a_fault_anywhere_gives_the_same_report_in_parallel_without_keys(
    fault: str, position: int
) -> None:
    trail = _trail()
    FAULTS[fault](trail, position)
    serial, parallel = _both(trail)
    assert parallel == serial


def test_unsigned_records_are_reported_alike_in_parallel() -> None:
    serial, parallel = _both(_trail(signer=RecordSigner(KeyId("other"), KEY)), router_keys=KEYS)
    assert len(serial.breaks) == COUNT
    assert parallel == serial


def test_known_heads_and_offsets_are_reported_alike_in_parallel() -> None:
    trail = _trail()
    noted = {CHAINS[0]: parse_record(trail[-1]).digest}
    cut = trail[:-1]
    serial, parallel = _both([(100 + i, v) for i, v in enumerate(cut)], known_heads=noted)
    assert serial.breaks[-1].reason.endswith("records were cut off")
    assert parallel == serial


def test_jobs_above_one_check_records_in_worker_processes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pools: list[int | None] = []

    class _Counting(ProcessPoolExecutor):
        def __init__(self, max_workers: int | None = None, **kwargs: Any) -> None:
            pools.append(max_workers)
            super().__init__(max_workers, **kwargs)

    monkeypatch.setattr(verify_module, "ProcessPoolExecutor", _Counting)
    assert verify_chain(_trail(), router_keys=KEYS, jobs=2).ok
    assert pools == [2]


def test_a_small_trail_is_checked_in_process_whatever_jobs_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(verify_module, "PARALLEL_MIN_RECORDS", COUNT + 1)
    monkeypatch.setattr(verify_module, "ProcessPoolExecutor", None)  # any use would fail
    assert verify_chain(_trail(), router_keys=KEYS, jobs=2).ok


@pytest.mark.parametrize("jobs", [0, -1])
def test_fewer_than_one_job_is_refused(jobs: int) -> None:
    with pytest.raises(ConfigError, match="jobs"):
        verify_chain(_trail(), jobs=jobs)


def _dies(chunk: list[bytes]) -> list[Any]:
    os._exit(9)  # as a worker the kernel kills for memory would


def test_a_worker_that_dies_is_an_audit_worker_error_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The workers fork from this process, so they run the replaced check.
    monkeypatch.setattr(verify_module, "_check_chunk", _dies)
    with pytest.raises(AuditWorkerError, match="stopped before it returned its results"):
        verify_chain(_trail(), router_keys=KEYS, jobs=2)
