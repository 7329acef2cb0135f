"""Pure intake of one native file: detect, validate, map, derive the id and seal each document.

No I/O happens here: :func:`take_in` returns what is ready to produce and what was rejected
(with the row and every failing field), and the publisher does the writing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from adapters.exchange.seam import EventSealer
from adapters.intake.identity import derive_event_id
from adapters.police.parse import parse_nrm_rows
from adapters.protocol import Adapter, CanonicalEvent, ParseResult
from adapters.registry import detect_format, parser_for
from broker.errors import CodecError, FieldProblem, InputValidationError
from broker.types import EventId

AUTO = "auto"
CSV_FORMAT = "nrm-csv"
"""The bulk CSV format (the police NRM export): read as a stream of rows, taken in by
:func:`take_in_rows`."""


@dataclass(frozen=True)
class ReadyEvent:
    """A document turned into a signed envelope, ready for its agency's ingress topic."""

    source: str
    row: int | None
    event: CanonicalEvent
    event_id: EventId
    envelope: bytes


@dataclass(frozen=True)
class Rejection:
    """A document (or a row of one) that was not published, and why."""

    source: str
    row: int | None
    message: str
    problems: tuple[FieldProblem, ...]

    def describe(self) -> str:
        """One line naming the file, the row and every problem."""
        where = f"{self.source} row {self.row}" if self.row is not None else self.source
        detail = "; ".join(str(p) for p in self.problems)
        return f"{where}: {self.message}" + (f": {detail}" if detail else "")


@dataclass(frozen=True)
class FileIntake:
    """Everything one file yielded."""

    source: str
    fmt: str | None
    ready: tuple[ReadyEvent, ...]
    rejections: tuple[Rejection, ...]


def _rejection(source: str, row: int | None, exc: InputValidationError) -> Rejection:
    message = str(exc)
    detail = "; ".join(str(p) for p in exc.problems)
    if detail and message.endswith(f": {detail}"):
        message = message[: -len(detail) - 2]
    return Rejection(source, row, message, exc.problems)


def take_in(source: str, data: bytes, fmt: str, sealer: EventSealer) -> FileIntake:
    """Validate, map and seal every document in ``data`` (named ``source``) as ``fmt``.

    ``fmt`` may be ``auto``. Nothing raises for bad input: every problem is a
    :class:`Rejection`.
    """
    try:
        actual = detect_format(source, data) if fmt == AUTO else fmt
        adapter = parser_for(actual)
        parsed = adapter.parse(data, actual)
    except InputValidationError as exc:
        return FileIntake(
            source, None if fmt == AUTO else fmt, (), (_rejection(source, None, exc),)
        )
    return _seal_parsed(source, actual, adapter, parsed, sealer)


def take_in_rows(
    source: str,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    first_row: int,
    sealer: EventSealer,
) -> FileIntake:
    """:func:`take_in` of rows of a bulk CSV (``nrm-csv``) already read: ``header`` as read
    and ``rows``, the first of them the file's row ``first_row`` (row numbers are the
    file's). What :func:`take_in` gives for the same rows written as a CSV of their own,
    without writing and reading them again (issue 19)."""
    try:
        parsed = parse_nrm_rows(header, rows, first_row)
    except InputValidationError as exc:
        return FileIntake(source, CSV_FORMAT, (), (_rejection(source, None, exc),))
    return _seal_parsed(source, CSV_FORMAT, parser_for(CSV_FORMAT), parsed, sealer)


def _seal_parsed(
    source: str, fmt: str, adapter: Adapter, parsed: ParseResult, sealer: EventSealer
) -> FileIntake:
    """Map, derive the id and seal every accepted document of ``parsed``."""
    ready: list[ReadyEvent] = []
    rejections = [_rejection(source, r.row, r.error) for r in parsed.rejected]
    for item in parsed.accepted:
        event = adapter.to_canonical(item.document)
        event_id = derive_event_id(sealer.agency, event)
        try:
            envelope = sealer.seal(event, event_id)
        except CodecError as exc:
            rejections.append(
                Rejection(
                    source,
                    item.row,
                    "does not fit the exchange's event schema",
                    (FieldProblem(event.record_name, str(exc)),),
                )
            )
            continue
        ready.append(ReadyEvent(source, item.row, event, event_id, envelope))
    rejections.sort(key=lambda r: r.row or 0)
    return FileIntake(source, fmt, tuple(ready), tuple(rejections))
