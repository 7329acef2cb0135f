"""Bulk CSV read as a stream: the header, then batches of rows, each row bounded.

A 13,000-row export is several megabytes; it is never read whole. Each batch holds the
header and its rows as read, which the format's own parser validates with the file's row
numbers (:func:`adapters.intake.pipeline.take_in_rows`); they are written back as a small
CSV only to keep a batch that had rejections (:attr:`Batch.data`). A row longer than
:data:`MAX_ROW_CHARS` is rejected by its number and the file read on; a row the CSV reader
cannot read ends the file with a rejection naming it, as the whole-file parser does.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from adapters.exchange.seam import EventSealer
from adapters.intake.pipeline import CSV_FORMAT, FileIntake, Rejection, take_in, take_in_rows
from broker.errors import FieldProblem

MAX_ROW_CHARS = 64 * 1024
"""The per-row bound: a referral row is a few hundred characters."""
MAX_FIELD_CHARS = 20_000
"""The per-field bound: the referral parser's own (a longer field would stop its reader
part-way through a batch, so such a row is rejected here, before the parser sees it)."""
ROWS_PER_BATCH = 500


@dataclass(frozen=True)
class Batch:
    """Rows of the file as read: ``first_row`` is the file's row number of the batch's first
    data row (the header is row 1); ``position`` the bytes read so far."""

    header: tuple[str, ...] | None
    """The file's header as read; ``None`` when it could not be read (then ``raw`` holds the
    start of the file, for the parser to say what is wrong with it)."""
    cells: tuple[list[str], ...]
    """The rows as read, in file order (a row left out is an empty row in its place)."""
    first_row: int
    rows: int
    position: int
    rejected: tuple[Rejection, ...] = ()
    """Rows left out of ``cells``: over the bound (the file goes on) or unreadable (the file
    ends there, as the whole-file parser ends it)."""
    raw: bytes = b""

    @property
    def data(self) -> bytes:
        """The batch as a CSV of its own (the header and its rows), or ``raw``: what is kept
        with the batch's rejections."""
        if self.header is None:
            return self.raw
        return _csv(list(self.header), self.cells)


def _rejection(path: Path, row: int, reason: str) -> Rejection:
    return Rejection(str(path), row, f"CSV row {row} is invalid", (FieldProblem("(row)", reason),))


def batches(path: Path, rows_per_batch: int = ROWS_PER_BATCH) -> Iterator[Batch]:
    """The file at ``path`` in batches of at most ``rows_per_batch`` rows.

    A row over :data:`MAX_ROW_CHARS` is left out (rejected by its row number) and the rows
    after it are read; a row the CSV reader cannot read ends the file. Blank rows stay in
    place (the parser skips them) so that row numbers match the file's.
    """
    with path.open("rb") as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
        reader = csv.reader(text)
        try:
            csv.field_size_limit(MAX_ROW_CHARS)
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError):
            header = None
        if header is None:
            # Empty or unreadable header: the parser says what is wrong with the whole file.
            yield Batch(None, (), 2, 0, path.stat().st_size, raw=path.read_bytes()[:MAX_ROW_CHARS])
            return
        row_no, first = 1, 2
        rows: list[list[str]] = []
        rejected: list[Rejection] = []
        while True:
            row_no += 1
            ended = False
            try:
                # The limit is process-wide and the parser sets its own: set ours each time.
                csv.field_size_limit(MAX_ROW_CHARS)
                cells = next(reader, None)
            except (csv.Error, UnicodeDecodeError) as exc:
                cells, ended = None, True
                reason = (
                    f"is not readable (over {MAX_ROW_CHARS} characters in a field, or "
                    f"malformed: {exc}); the rows after it were not read"
                )
                rejected.append(_rejection(path, row_no, reason))
            if cells is None:
                ended = True
            elif cells and (
                # map(len, ...): the bounds are checked for every row of the file
                sum(map(len, cells)) > MAX_ROW_CHARS or max(map(len, cells)) > MAX_FIELD_CHARS
            ):
                reason = (
                    f"is longer than {MAX_ROW_CHARS} characters, or has a field longer than "
                    f"{MAX_FIELD_CHARS}"
                )
                rejected.append(_rejection(path, row_no, reason))
                cells = []  # a blank row in its place keeps the numbering
            if cells is not None:
                rows.append(cells)
            if ended or len(rows) >= rows_per_batch:
                yield Batch(
                    tuple(header), tuple(rows), first, len(rows), raw.tell(), tuple(rejected)
                )
                first, rows, rejected = row_no + 1, [], []
            if ended:
                return


def _csv(header: list[str], rows: Sequence[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def take_in_batch(source: str, batch: Batch, sealer: EventSealer) -> FileIntake:
    """What taking in ``batch`` of the bulk CSV named ``source`` yields, with the file's row
    numbers (the rows left out of the batch, :attr:`Batch.rejected`, are not in it)."""
    if batch.header is None:
        return take_in(source, batch.raw, CSV_FORMAT, sealer)
    return take_in_rows(source, batch.header, batch.cells, batch.first_row, sealer)
