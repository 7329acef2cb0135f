"""Take in the batches of a bulk CSV in worker processes, in file order.

Taking in a row (validate, map, derive the id, seal the identity fields, sign) is CPU work
in Python: one process publishes a 10,000-row export at the speed of one core (issue 19).
:class:`ParallelIntake` runs :func:`~adapters.intake.pipeline.take_in` on several batches
at once in worker processes while the publishing process produces the batches already
done; the results come back in the order the batches were read, so rows are produced in
file order and a file re-published after a crash yields the same events (ids are derived
from the content, not from which worker sealed them).

Each worker builds its own sealer once, from a picklable factory (keys are loaded from the
key directory in the worker, never sent through the pipe). Workers are *spawned*, not
forked: the publishing process runs an event loop and Kafka clients whose state must not be
copied into a child.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from adapters.exchange.seam import EventSealer
from adapters.intake.csvstream import ROWS_PER_BATCH, Batch, take_in_batch
from adapters.intake.pipeline import FileIntake

SealerFactory = Callable[[], EventSealer]
"""Builds the publishing agency's sealer; must be picklable (a module-level function or a
:func:`functools.partial` of one)."""

_sealer: EventSealer | None = None
"""The worker process's sealer, built once by :func:`_start_worker`."""


def _start_worker(factory: SealerFactory) -> None:
    global _sealer  # one sealer per worker process, built at its start
    _sealer = factory()


def _take_in_batch(source: str, batch: Batch) -> FileIntake:
    if _sealer is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("intake worker started without a sealer")
    return without_payloads(take_in_batch(source, batch, _sealer))


def without_payloads(intake: FileIntake) -> FileIntake:
    """``intake`` with each ready event's payload and markings left out: what a worker sends
    back. The publisher needs the envelope (which holds them, signed) and the event's type
    and subject; pickling the payloads through the pipe and back cost ~25 µs a row, most of
    it unpickling in the publishing process (issue 19)."""
    return replace(
        intake,
        ready=tuple(
            replace(r, event=replace(r.event, payload={}, markings={})) for r in intake.ready
        ),
    )


def _warm_up() -> None:
    """Nothing: submitted once per worker when the pool is entered, so that each worker
    process is spawned (imports, keys, sealer) while the caller connects to Kafka."""


def default_workers() -> int:
    """One worker per core the publisher may use (at least one)."""
    return max(len(os.sched_getaffinity(0)), 1)


def batches_in(path: Path, rows_per_batch: int = ROWS_PER_BATCH) -> int:
    """About how many batches the CSV at ``path`` is read in: its lines after the header,
    ``rows_per_batch`` to a batch (a quoted field holding a line break counts twice; this
    only sizes the pool)."""
    lines, last = 0, b"\n"
    with path.open("rb") as raw:
        while chunk := raw.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    if last != b"\n":
        lines += 1  # the last line without its line break
    return -(-max(lines - 1, 0) // rows_per_batch)


def workers_for(paths: Sequence[Path], requested: int) -> int:
    """The workers worth starting for the bulk CSVs ``paths``: at most ``requested`` and
    at most one per batch of the longest file; none when no file has two batches (one
    batch in a worker would only add the worker's start-up, ~1 s of CPU, to the run)."""
    most = max((batches_in(p) for p in paths), default=0)
    return min(requested, most) if most > 1 else 0


@dataclass
class ParallelIntake:
    """A pool of intake workers; ``async with`` starts and stops it."""

    factory: SealerFactory
    workers: int
    _pool: Executor | None = None

    async def __aenter__(self) -> ParallelIntake:
        self._pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(self.factory,),
        )
        # Spawned workers start on demand (one per task while none is idle): spawn them all
        # now, so their start-up (~1 s of imports and key loading each) overlaps the
        # publisher's topic check and producer connection instead of delaying the first batch.
        for _ in range(self.workers):
            self._pool.submit(_warm_up)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._pool is not None:
            await asyncio.to_thread(self._pool.shutdown, True, cancel_futures=True)
            self._pool = None

    async def take_in_batches(
        self, source: str, found: Iterable[Batch]
    ) -> AsyncIterator[tuple[Batch, FileIntake]]:
        """Each batch of ``found`` with what taking it in yielded, in order; at most two
        batches per worker are in flight, so memory stays bounded however long the file.
        The ready events come back :func:`without_payloads` (their envelopes hold them)."""
        if self._pool is None:
            raise RuntimeError("ParallelIntake used outside `async with`")
        loop = asyncio.get_running_loop()
        pending: list[tuple[Batch, asyncio.Future[FileIntake]]] = []
        ahead = 2 * self.workers
        for batch in found:
            # The rows as read go to the worker (not written back as CSV text to be read
            # again there), and come back with the file's row numbers.
            future = loop.run_in_executor(self._pool, _take_in_batch, source, batch)
            pending.append((batch, future))
            if len(pending) >= ahead:
                done, result = pending.pop(0)
                yield done, await result
        for done, result in pending:
            yield done, await result
