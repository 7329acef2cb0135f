"""Bulk CSVs taken in by worker processes publish exactly what one process publishes."""

from __future__ import annotations

import functools
from pathlib import Path

from adapters.intake.parallel import ParallelIntake
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


async def test_workers_keep_each_rejected_rows_own_number(tmp_path: Path) -> None:
    path = EXAMPLES / "police/referrals-with-bad-rows.csv"
    alone, _ = await _publish(tmp_path, path, 0)
    pooled, _ = await _publish(tmp_path, path, 2)
    assert [r.row for r in pooled.report.rejected] == [3, 5]
    assert [r.describe() for r in pooled.report.rejected] == [
        r.describe() for r in alone.report.rejected
    ]
