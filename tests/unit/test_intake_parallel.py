"""Bulk CSVs taken in by worker processes publish exactly what one process publishes."""

from __future__ import annotations

import functools
import multiprocessing
from pathlib import Path

import pytest

from adapters.intake.csvstream import ROWS_PER_BATCH
from adapters.intake.parallel import ParallelIntake, batches_in, workers_for
from adapters.intake.pipeline import ReadyEvent
from adapters.intake.publisher import Publisher
from broker.settings import Settings
from broker.types import AgencyId
from tests.unit.adapter_fakes import FakeProducer, JsonSealer
from tests.unit.adapter_samples import EXAMPLES
from tests.unit.test_intake_csv_stream import _export

MET = AgencyId("met-police")


async def _publish(tmp_path: Path, path: Path, workers: int) -> tuple[Publisher, FakeProducer]:
    settings = Settings(state_dir=tmp_path / f"state-{workers}", ingress_prefix="in-test.")
    producer = FakeProducer()
    if not workers:
        publisher = Publisher(settings, JsonSealer(MET), producer)
        await publisher.publish_file(path)
        return publisher, producer
    async with ParallelIntake(functools.partial(JsonSealer, MET), workers) as parallel:
        publisher = Publisher(settings, JsonSealer(MET), producer, parallel=parallel)
        await publisher.publish_file(path)
    return publisher, producer


async def test_workers_publish_every_row_in_file_order_with_the_same_ids(tmp_path: Path) -> None:
    path = _export(tmp_path / "export.csv", 1_300, long_row=700)
    alone, alone_sent = await _publish(tmp_path, path, 0)
    pooled, pooled_sent = await _publish(tmp_path, path, 2)
    assert [p.row for p in pooled.report.published] == [r for r in range(2, 1_302) if r != 700]
    assert pooled_sent == alone_sent
    assert pooled.report.published == alone.report.published


async def test_workers_send_back_every_envelope_and_its_facts_without_the_payload(
    tmp_path: Path,
) -> None:
    path = _export(tmp_path / "export.csv", 1_100)
    settings = Settings(state_dir=tmp_path / "state", ingress_prefix="in-test.")
    alone = await Publisher(settings, JsonSealer(MET), FakeProducer()).publish_file(path)
    async with ParallelIntake(functools.partial(JsonSealer, MET), 2) as parallel:
        publisher = Publisher(settings, JsonSealer(MET), FakeProducer(), parallel=parallel)
        pooled = await publisher.publish_file(path)

    def facts(r: ReadyEvent) -> tuple[object, ...]:
        return (r.source, r.row, r.event_id, r.envelope, r.event.event_type, r.event.subject)

    assert [facts(r) for r in pooled.ready] == [facts(r) for r in alone.ready]
    assert all(r.event.payload == {} for r in pooled.ready)


async def test_workers_keep_each_rejected_rows_own_number(tmp_path: Path) -> None:
    path = EXAMPLES / "police/referrals-with-bad-rows.csv"
    alone, _ = await _publish(tmp_path, path, 0)
    pooled, _ = await _publish(tmp_path, path, 2)
    assert [r.row for r in pooled.report.rejected] == [3, 5]
    assert [r.describe() for r in pooled.report.rejected] == [
        r.describe() for r in alone.report.rejected
    ]


async def test_entering_the_pool_spawns_every_worker_before_the_first_batch() -> None:
    # Their start-up then overlaps the publisher's connection to Kafka (issue 19).
    before = set(multiprocessing.active_children())
    async with ParallelIntake(functools.partial(JsonSealer, MET), 2):
        spawned = set(multiprocessing.active_children()) - before
        assert len(spawned) == 2


def _csv_of(path: Path, rows: int, *, trailing_newline: bool = True) -> Path:
    text = "\n".join(["a,b", *(f"{n},x" for n in range(rows))])
    path.write_text(text + ("\n" if trailing_newline else ""))
    return path


@pytest.mark.parametrize(
    ("rows", "batches"),
    [(0, 0), (1, 1), (ROWS_PER_BATCH, 1), (ROWS_PER_BATCH + 1, 2), (3 * ROWS_PER_BATCH, 3)],
)
@pytest.mark.parametrize("trailing_newline", [True, False])
def test_batches_in_counts_the_batches_of_rows_after_the_header(
    tmp_path: Path, rows: int, batches: int, trailing_newline: bool
) -> None:
    path = _csv_of(tmp_path / "x.csv", rows, trailing_newline=trailing_newline)
    assert batches_in(path) == batches


def test_batches_in_an_empty_file_is_none(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    assert batches_in(path) == 0


def test_a_csv_of_one_batch_gets_no_workers(tmp_path: Path) -> None:
    small = _csv_of(tmp_path / "small.csv", ROWS_PER_BATCH)
    assert workers_for([small], 4) == 0


def test_workers_are_at_most_the_batches_of_the_longest_csv(tmp_path: Path) -> None:
    small = _csv_of(tmp_path / "small.csv", 10)
    two = _csv_of(tmp_path / "two.csv", ROWS_PER_BATCH + 1)
    assert workers_for([small, two], 4) == 2
    assert workers_for([small, two], 1) == 1
    assert workers_for([small, two], 0) == 0
    assert workers_for([], 4) == 0
