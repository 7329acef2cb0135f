"""Issue 18 part 2: a bulk CSV is read as a stream of bounded rows, not refused whole at
5 MB: a generated 13,000-row export of about 6 MB publishes every row, with the file's row
numbers, and a row over the per-row bound is rejected by number."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from adapters.intake.csvstream import MAX_FIELD_CHARS, MAX_ROW_CHARS, batches
from adapters.intake.publisher import Publisher
from adapters.native.documents import MAX_DOCUMENT_BYTES
from adapters.police import parse as police_parse
from broker.settings import Settings
from broker.types import AgencyId
from tests.unit.adapter_fakes import FakeProducer, JsonSealer
from tests.unit.adapter_samples import EXAMPLES

ROWS = 13_000


def _export(path: Path, rows: int, *, long_row: int | None = None, kind: str = "row") -> Path:
    """``rows`` referrals built from the example export's first row, each its own id; the
    account column padded so 13,000 rows make about 6 MB. Row ``long_row`` is over the row
    bound (``kind="row"``: four columns of 17,000 characters, each within the field bound)
    or has one field over the field bound (``kind="field"``)."""
    text = (EXAMPLES / "police/referrals.csv").read_text()
    header, first = list(csv.reader(io.StringIO(text)))[:2]
    id_col, account = header.index("external_id"), header.index("account")
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        for i in range(rows):
            cells = list(first)
            cells[id_col] = f"3a0c5b7e-1111-4a2b-8c3d-{i:012d}"
            cells[account] = "Synthetic account " + "x" * 30
            if i + 2 == long_row and kind == "row":
                for column in range(account - 3, account + 1):
                    cells[column] = "x" * 17_000
            elif i + 2 == long_row:
                cells[account] = "x" * (MAX_FIELD_CHARS + 1)
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


async def test_a_row_over_the_bound_is_rejected_by_its_row_number_and_the_rest_read(
    tmp_path: Path,
) -> None:
    path = _export(tmp_path / "export.csv", 1_000, long_row=700)
    publisher, _ = _publisher(tmp_path)
    intake = await publisher.publish_file(path)
    assert [r.row for r in intake.rejections] == [700]
    assert "700" in intake.rejections[0].message
    published = [p.row for p in publisher.report.published]
    assert published == [r for r in range(2, 1_002) if r != 700]


async def test_bad_rows_of_a_streamed_file_keep_their_own_row_numbers(tmp_path: Path) -> None:
    publisher, _ = _publisher(tmp_path)
    intake = await publisher.publish_file(EXAMPLES / "police/referrals-with-bad-rows.csv")
    assert [r.row for r in intake.rejections] == [3, 5]
    assert all(f"row {r.row} " in r.message for r in intake.rejections)


def test_an_unreadable_row_ends_the_file_with_a_rejection_naming_it(tmp_path: Path) -> None:
    path = _export(tmp_path / "export.csv", 10)
    with path.open("a", encoding="utf-8") as out:
        out.write('x,"' + "y" * (MAX_ROW_CHARS + 10) + '"\n')
        out.write("after,the,bad,row\n")
    found = list(batches(path))
    [rejection] = [r for b in found for r in b.rejected]
    assert rejection.row == 12
    assert sum(b.rows for b in found) == 10


def test_the_field_bound_is_within_the_parsers_own() -> None:
    # A longer field would stop the parser's reader part-way through a batch.
    assert police_parse._CSV_FIELD_LIMIT >= MAX_FIELD_CHARS


async def test_a_field_over_the_parsers_bound_is_rejected_and_the_rest_read(
    tmp_path: Path,
) -> None:
    path = _export(tmp_path / "export.csv", 600, long_row=450, kind="field")
    publisher, _ = _publisher(tmp_path)
    intake = await publisher.publish_file(path)
    assert [r.row for r in intake.rejections] == [450]
    assert len(publisher.report.published) == 599
