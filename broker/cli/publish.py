"""``msht publish``: send native documents from an agency's own systems into the exchange.

Every valid document is validated, mapped, signed with the agency's key and produced to the
agency's ingress topic; every rejected document or CSV row is kept with its reasons under
``<state_dir>/rejected/<agency>/`` (and on the rejected topic with ``--rejected-topic``).
Exit code 0 when everything was published, 1 when something was rejected.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from adapters.exchange.seam import EventSealer
from adapters.intake.inbox import InboxWatcher
from adapters.intake.parallel import ParallelIntake, default_workers, workers_for
from adapters.intake.pipeline import AUTO, CSV_FORMAT, take_in
from adapters.intake.publisher import Publisher, PublishReport
from adapters.registry import PARSE_FORMATS
from broker.errors import InputValidationError
from broker.settings import Settings, load_settings
from broker.types import AgencyId


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``publish`` sub-command."""
    p = sub.add_parser(
        "publish",
        help="publish native documents (NRM, DtN, CSV, case updates, CPS XML, alerts)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--agency", required=True, help="publishing agency id (its key signs)")
    p.add_argument(
        "--format",
        default=AUTO,
        choices=[AUTO, *sorted(PARSE_FORMATS)],
        help="input format (default: auto, from the file name and content)",
    )
    p.add_argument(
        "--rejected-topic",
        action="store_true",
        help="also produce each rejection (raw input and reasons) to the rejected topic",
    )
    p.add_argument(
        "--watch",
        type=Path,
        default=None,
        metavar="DIR",
        help="run until stopped: publish each document dropped into DIR/inbox and file it "
        "with a receipt under DIR/processed or DIR/rejected (docs/DEPLOY.md)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="validate, map and sign, and print what would be published; send nothing",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="processes that validate, seal and sign the rows of a bulk CSV while this one "
        "produces (default: one per core; never more than the 500-row batches of the longest "
        "CSV, none for a CSV of one batch; 0 = all in this process)",
    )
    p.add_argument("files", nargs="*", type=Path, metavar="FILE", help="files or folders")
    p.set_defaults(handler=run)


def expand(paths: Sequence[Path]) -> list[Path]:
    """Files named directly, and the files inside named folders (sorted, hidden ones skipped)."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(
                sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            )
        elif path.is_file():
            out.append(path)
        else:
            raise InputValidationError(f"{path} is not a file or folder")
    return out


async def publish_files(
    settings: Settings,
    sealer: EventSealer,
    files: Sequence[Path],
    fmt: str = AUTO,
    *,
    rejected_to_topic: bool = False,
    console: Console | None = None,
    parallel: ParallelIntake | None = None,
) -> PublishReport:
    """Publish ``files`` with a progress bar (when there are several) and return the report.

    With ``parallel`` (started), bulk CSVs are taken in by its worker processes."""
    console = console or Console(stderr=True)
    # One live display (rich allows no more): a task for the files when there are several,
    # and one per bulk CSV for the bytes read, shown on a terminal.
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[current]}"),
        console=console,
        disable=len(files) < 2 and not console.is_terminal,
    )
    async with Publisher.open(
        settings, sealer, rejected_to_topic=rejected_to_topic, parallel=parallel
    ) as publisher:
        with progress:
            task = progress.add_task(
                "publishing", total=len(files), current="", visible=len(files) > 1
            )
            for path in files:
                progress.update(task, current=path.name)
                reading = progress.add_task("reading", total=None, current=path.name)

                def advance(done: int, total: int, reading: TaskID = reading) -> None:
                    progress.update(reading, completed=done, total=total)

                await publisher.publish_file(path, fmt, progress=advance)
                progress.remove_task(reading)
                progress.advance(task)
        return publisher.report


def summarise(report: PublishReport, out: TextIO) -> None:
    """Print what was published and every rejection with its reasons (one line each)."""
    print(
        f"published {len(report.published)} event(s) from {report.files} file(s); "
        f"rejected {len(report.rejected)}",
        file=out,
    )
    for rejection in report.rejected:
        print(f"  rejected: {rejection.describe()}", file=out)
    for kept in report.kept:
        print(f"  kept: {kept}", file=out)


def dry_run(
    settings: Settings, sealer: EventSealer, files: Sequence[Path], fmt: str, out: TextIO
) -> int:
    """Print what each file would publish (event id, type, row, topic) and every rejection;
    nothing is sent. Exit code 0 when nothing would be rejected, else 1."""
    topic = settings.ingress_topic(sealer.agency)
    events = rejected = 0
    for path in files:
        intake = take_in(str(path), path.read_bytes(), fmt, sealer)
        for ready in intake.ready:
            row = f" row {ready.row}" if ready.row is not None else ""
            print(
                f"would publish {ready.event_id} {ready.event.event_type} from {path.name}{row} "
                f"to {topic}",
                file=out,
            )
        for rejection in intake.rejections:
            print(f"would reject {rejection.describe()}", file=out)
        events += len(intake.ready)
        rejected += len(intake.rejections)
    print(f"dry run: {events} event(s) would be published, {rejected} rejected", file=out)
    return 1 if rejected else 0


async def watch(settings: Settings, sealer: EventSealer, root: Path, fmt: str) -> None:
    """Run the watched inbox at ``root`` until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with Publisher.open(settings, sealer) as publisher:
        await InboxWatcher(root, publisher, fmt).run(stop)


def run(args: argparse.Namespace) -> int:
    """Handler of ``msht publish``."""
    # Imported here so `msht --help` works without the signing stack being importable.
    from adapters.exchange.signed import sealer_from_settings

    if (args.watch is None) == (not args.files):
        raise InputValidationError("give FILE(s) to publish, or --watch DIR, not both")
    settings = load_settings()
    agency = AgencyId(args.agency)
    sealer = sealer_from_settings(settings, agency)
    if args.watch is not None:
        if args.dry_run:
            raise InputValidationError("--dry-run takes FILE(s), not --watch")
        asyncio.run(watch(settings, sealer, args.watch, args.format))
        return 0
    files = expand(args.files)
    if args.dry_run:
        return dry_run(settings, sealer, files, args.format, sys.stdout)
    console = Console(stderr=True)
    workers = default_workers() if args.workers is None else args.workers
    if workers < 0:
        raise InputValidationError(f"--workers {workers}: give 0 or more")
    bulk = [
        f
        for f in files
        if args.format == CSV_FORMAT or (args.format == AUTO and f.suffix.lower() == ".csv")
    ]
    # No more workers than batches to share, and none for a CSV of one batch.
    workers = workers_for(bulk, workers)

    async def publish() -> PublishReport:
        if not workers:
            return await publish_files(
                settings, sealer, files, args.format,
                rejected_to_topic=args.rejected_topic, console=console,
            )  # fmt: skip
        # Each worker loads the agency's key itself, as this process just did.
        factory = functools.partial(sealer_from_settings, settings, agency)
        async with ParallelIntake(factory, workers) as parallel:
            return await publish_files(
                settings, sealer, files, args.format,
                rejected_to_topic=args.rejected_topic, console=console, parallel=parallel,
            )  # fmt: skip

    report = asyncio.run(publish())
    summarise(report, sys.stdout)
    return 1 if report.rejected else 0
