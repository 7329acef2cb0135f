"""A bulk CSV's rows are taken in as read (issue 19): the rows of each batch go to the parser
without being written back as CSV text and read again, and yield what the whole file parsed
at once yields: the same documents, events and rejections, with the file's row numbers."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from adapters.intake.csvstream import batches, take_in_batch
from adapters.intake.pipeline import CSV_FORMAT, FileIntake, ReadyEvent, Rejection, take_in
from adapters.police.parse import parse_nrm_csv, parse_nrm_rows
from adapters.protocol import ParseResult
from broker.errors import FieldProblem
from broker.types import AgencyId
from tests.unit.adapter_fakes import JsonSealer
from tests.unit.adapter_samples import EXAMPLES

SEALER = JsonSealer(AgencyId("met-police"))


def _rows(name: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO((EXAMPLES / "police" / name).read_text())))


HEADER, *GOOD = _rows("referrals.csv")
_, *BAD = _rows("referrals-with-bad-rows.csv")


def _csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


Accepted = list[tuple[int | None, BaseModel]]
Rejected = list[tuple[int | None, str, tuple[FieldProblem, ...]]]


def _shape(result: ParseResult) -> tuple[Accepted, Rejected]:
    return (
        [(item.row, item.document) for item in result.accepted],
        [(item.row, str(item.error), item.error.problems) for item in result.rejected],
    )


def _row() -> st.SearchStrategy[list[str]]:
    """Good and bad rows, blank ones, rows with a cell too few and with spaces around."""
    sample = st.sampled_from([*GOOD, *BAD])
    return st.one_of(
        sample,
        st.just([]),
        st.just([" "] * len(HEADER)),
        sample.map(lambda r: r[:-1]),
        sample.map(lambda r: [f" {c} " for c in r]),
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(_row(), max_size=8), st.integers(min_value=2, max_value=10_000))
def test_rows_as_read_parse_as_the_same_rows_in_a_csv_of_their_own(
    rows: list[list[str]], first_row: int
) -> None:
    from_rows = parse_nrm_rows(HEADER, rows, first_row)
    # The same rows in a CSV of their own, then numbered as the file's rows.
    from_text = parse_nrm_csv(_csv([HEADER, *rows]))
    shift = first_row - 2
    accepted, rejected = _shape(from_text)
    assert _shape(from_rows) == (
        [(_plus(row, shift), doc) for row, doc in accepted],
        [
            (
                _plus(row, shift),
                message.replace(f"row {row} ", f"row {_plus(row, shift)} ", 1),
                problems,
            )
            for row, message, problems in rejected
        ],
    )


def _plus(row: int | None, shift: int) -> int:
    assert row is not None  # every document of a CSV has its row
    return row + shift


def _whole_and_batched(path: Path, rows_per_batch: int) -> tuple[FileIntake, FileIntake]:
    whole = take_in(str(path), path.read_bytes(), CSV_FORMAT, SEALER)
    ready: list[ReadyEvent] = []
    rejections: list[Rejection] = []
    for batch in batches(path, rows_per_batch=rows_per_batch):
        taken = take_in_batch(str(path), batch, SEALER)
        ready.extend(taken.ready)
        rejections.extend(taken.rejections)
    return whole, FileIntake(str(path), CSV_FORMAT, tuple(ready), tuple(rejections))


def _mixed_export(path: Path) -> Path:
    rows = [HEADER, *GOOD, [], *BAD, *GOOD, [" "] * len(HEADER), BAD[0][:-1], *BAD]
    path.write_bytes(_csv(rows))
    return path


def test_a_file_taken_in_batch_by_batch_yields_what_the_whole_file_yields(
    tmp_path: Path,
) -> None:
    path = _mixed_export(tmp_path / "mixed.csv")
    for rows_per_batch in (1, 2, 3, 500):
        whole, batched = _whole_and_batched(path, rows_per_batch)
        assert batched.ready == whole.ready
        assert batched.rejections == whole.rejections
        assert batched.rejections  # the file has bad rows: the comparison is not vacuous


def test_a_bad_header_rejects_each_batch_as_the_whole_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "bad-header.csv"
    path.write_bytes(_csv([[*HEADER[:-1], "no_such_column"], *GOOD, *GOOD]))
    whole, batched = _whole_and_batched(path, 2)
    assert whole.rejections[0].row is None
    assert set(batched.rejections) == set(whole.rejections)


def test_a_batch_is_written_back_as_the_csv_of_its_rows_to_be_kept(tmp_path: Path) -> None:
    path = _mixed_export(tmp_path / "mixed.csv")
    [batch] = list(batches(path))
    assert list(csv.reader(io.StringIO(batch.data.decode()))) == [HEADER, *batch.cells]
