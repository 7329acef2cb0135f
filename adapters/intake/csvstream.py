"""Bulk CSV read as a stream: the header, then batches of rows, each row bounded.

A 13,000-row export is several megabytes; it is never read whole. Each batch is written
back as a small CSV (the header and its rows) that the format's own parser validates, and
row numbers are shifted back to the file's (:func:`shift_rows`). A row longer than
:data:`MAX_ROW_CHARS`, or that the CSV reader cannot read, ends the file with a rejection
naming that row, as the whole-file parser does.
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
ROWS_PER_BATCH = 500
_FIELD_LIMIT = MAX_ROW_CHARS


@dataclass(frozen=True)
class Batch:
    """Rows of the file as a CSV of their own: ``first_row`` is the file's row number of the
    batch's first data row (the header is row 1); ``position`` the bytes read so far."""

    data: bytes
    first_row: int
    rows: int
    position: int
    stopped: Rejection | None = None
    """A row the reader could not read (or over the bound): the file ends there."""


def batches(path: Path, rows_per_batch: int = ROWS_PER_BATCH) -> Iterator[Batch]:
    """The file at ``path`` in batches of at most ``rows_per_batch`` rows."""
    csv.field_size_limit(_FIELD_LIMIT)
    with path.open("rb") as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
        reader = csv.reader(text)
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError):
            header = None
        if header is None:
            # Empty or unreadable header: the parser says what is wrong with the whole file.
            yield Batch(path.read_bytes()[:MAX_ROW_CHARS], 2, 0, path.stat().st_size)
            return
        row_no, first, rows = 1, 2, []
        while True:
            row_no += 1
            stopped: Rejection | None = None
            try:
                cells = next(reader, None)
            except (csv.Error, UnicodeDecodeError) as exc:
                cells = None
                stopped = Rejection(
                    str(path), row_no, f"CSV row {row_no} is invalid",
                    (FieldProblem("(row)", f"is not readable (over {MAX_ROW_CHARS} characters "
                                  f"or malformed: {exc})"),),
                )  # fmt: skip
            if cells is not None and sum(len(c) for c in cells) > MAX_ROW_CHARS:
                cells = None
                stopped = Rejection(
                    str(path), row_no, f"CSV row {row_no} is invalid",
                    (FieldProblem("(row)", f"is longer than {MAX_ROW_CHARS} characters"),),
                )  # fmt: skip
            if cells is not None:
                rows.append(cells)
            if cells is None or len(rows) >= rows_per_batch:
                yield Batch(_csv(header, rows), first, len(rows), raw.tell(), stopped)
                first, rows = row_no + 1, []
            if cells is None:
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
