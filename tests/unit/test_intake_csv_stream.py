"""Issue 18 part 2: a bulk CSV is read as a stream of bounded rows, not refused whole at
5 MB: a generated 13,000-row export of about 6 MB publishes every row, with the file's row
numbers, and a row over the per-row bound is rejected by number."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from adapters.intake.csvstream import MAX_ROW_CHARS, batches
from adapters.intake.publisher import Publisher
from adapters.native.documents import MAX_DOCUMENT_BYTES
from broker.settings import Settings
from broker.types import AgencyId
from tests.unit.adapter_fakes import FakeProducer, JsonSealer
from tests.unit.adapter_samples import EXAMPLES

ROWS = 13_000


def _export(path: Path, rows: int, *, long_row: int | None = None) -> Path:
    """``rows`` referrals built from the example export's first row, each its own id; the
    account column padded so the file is about 6 MB."""
    header, first = list(csv.reader(io.StringIO((EXAMPLES / "police/referrals.csv").read_text())))[
        :2
    ]
    id_col, account = header.index("external_id"), header.index("account")
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        for i in range(rows):
            cells = list(first)
            cells[id_col] = f"3a0c5b7e-1111-4a2b-8c3d-{i:012d}"
            size = MAX_ROW_CHARS + 1 if i + 2 == long_row else 30
            cells[account] = "Synthetic account " + "x" * size
            writer.writerow(cells)
    return path


def _publisher(tmp_path: Path) -> tuple[Publisher, FakeProducer]:
    settings = Settings(state_dir=tmp_path / "state", ingress_prefix="in-test.")
    producer = FakeProducer()
    return Publisher(settings, JsonSealer(AgencyId("met-police")), producer), producer


async def test_a_13000_row_export_over_the_document_limit_publishes_every_row(
    tmp_path: Path,
) -> None:
    path = _export(tmp_path / "export.csv", ROWS)
    assert path.stat().st_size > MAX_DOCUMENT_BYTES
    assert path.stat().st_size > 5_500_000
    publisher, producer = _publisher(tmp_path)
    seen: list[tuple[int, int]] = []
    intake = await publisher.publish_file(
        path, progress=lambda done, total: seen.append((done, total))
    )
    assert intake.rejections == ()
    assert len(producer.sent) == ROWS
    assert [p.row for p in publisher.report.published] == list(range(2, ROWS + 2))
    assert len({p.event_id for p in publisher.report.published}) == ROWS
    assert seen[-1] == (path.stat().st_size, path.stat().st_size)
    assert len(seen) > 1  # progress while reading, not only at the end


def test_the_file_is_read_in_bounded_batches(tmp_path: Path) -> None:
    path = _export(tmp_path / "export.csv", 1_200)
    found = list(batches(path, rows_per_batch=500))
    assert [b.rows for b in found] == [500, 500, 200]
    assert [b.first_row for b in found[:3]] == [2, 502, 1002]
    assert max(len(b.data) for b in found) < 500 * 2_000


async def test_a_row_over_the_bound_is_rejected_by_its_file_row_number(tmp_path: Path) -> None:
    path = _export(tmp_path / "export.csv", 1_000, long_row=700)
    publisher, _ = _publisher(tmp_path)
    intake = await publisher.publish_file(path)
    assert [r.row for r in intake.rejections] == [700]
    assert "700" in intake.rejections[0].message
    assert [p.row for p in publisher.report.published] == list(range(2, 700))


async def test_bad_rows_of_a_streamed_file_keep_their_own_row_numbers(tmp_path: Path) -> None:
    publisher, _ = _publisher(tmp_path)
    intake = await publisher.publish_file(EXAMPLES / "police/referrals-with-bad-rows.csv")
    assert [r.row for r in intake.rejections] == [3, 5]
    assert all(f"row {r.row} " in r.message for r in intake.rejections)
