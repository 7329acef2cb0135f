"""Bulk CSV read as a stream: the header, then batches of rows, each row bounded.

A 13,000-row export is several megabytes; it is never read whole. Each batch is written
back as a small CSV (the header and its rows) that the format's own parser validates, and
row numbers are shifted back to the file's (:func:`shift_rows`). A row longer than
:data:`MAX_ROW_CHARS` is rejected by its number and the file read on; a row the CSV reader
cannot read ends the file with a rejection naming it, as the whole-file parser does.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from adapters.intake.pipeline import FileIntake, Rejection
from broker.errors import FieldProblem

MAX_ROW_CHARS = 64 * 1024
"""The per-row bound: a referral row is a few hundred characters."""
MAX_FIELD_CHARS = 20_000
"""The per-field bound: the referral parser's own (a longer field would stop its reader
part-way through a batch, so such a row is rejected here, before the parser sees it)."""
ROWS_PER_BATCH = 500


@dataclass(frozen=True)
class Batch:
    """Rows of the file as a CSV of their own: ``first_row`` is the file's row number of the
    batch's first data row (the header is row 1); ``position`` the bytes read so far."""

    data: bytes
    first_row: int
    rows: int
    position: int
    rejected: tuple[Rejection, ...] = ()
    """Rows left out of ``data``: over the bound (the file goes on) or unreadable (the file
    ends there, as the whole-file parser ends it)."""


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
            yield Batch(path.read_bytes()[:MAX_ROW_CHARS], 2, 0, path.stat().st_size)
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
            elif sum(len(c) for c in cells) > MAX_ROW_CHARS or any(
                len(c) > MAX_FIELD_CHARS for c in cells
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
                yield Batch(_csv(header, rows), first, len(rows), raw.tell(), tuple(rejected))
                first, rows, rejected = row_no + 1, [], []
            if ended:
                return


def _csv(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def shift_rows(intake: FileIntake, first_row: int, source: str) -> FileIntake:
    """``intake`` of a batch with its row numbers as the file's (batch row 2 is
    ``first_row``) and its source named as the file."""
    shift = first_row - 2

    def moved(row: int | None) -> int | None:
        return None if row is None else row + shift

    return dataclasses.replace(
        intake,
        source=source,
        ready=tuple(dataclasses.replace(r, row=moved(r.row), source=source) for r in intake.ready),
        rejections=tuple(
            dataclasses.replace(
                r, row=moved(r.row), source=source,
                message=_renumber(r.message, r.row, moved(r.row)),
            )
            for r in intake.rejections
        ),
    )  # fmt: skip


def _renumber(message: str, old: int | None, new: int | None) -> str:
    if old is None or new is None or old == new:
        return message
    return message.replace(f"row {old} ", f"row {new} ", 1)
