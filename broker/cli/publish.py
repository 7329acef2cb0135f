"""``msht publish``: send native documents from an agency's own systems into the exchange.

Every valid document is validated, mapped, signed with the agency's key and produced to the
agency's ingress topic; every rejected document or CSV row is kept with its reasons under
``<state_dir>/rejected/<agency>/`` (and on the rejected topic with ``--rejected-topic``).
Exit code 0 when everything was published, 1 when something was rejected.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from adapters.exchange.seam import EventSealer
from adapters.intake.pipeline import AUTO
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
    p.add_argument("files", nargs="+", type=Path, metavar="FILE", help="files or folders")
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
) -> PublishReport:
    """Publish ``files`` with a progress bar (when there are several) and return the report."""
    console = console or Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]publishing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[current]}"),
        console=console,
        disable=len(files) < 2,
    )
    async with Publisher.open(settings, sealer, rejected_to_topic=rejected_to_topic) as publisher:
        with progress:
            task = progress.add_task("publish", total=len(files), current="")
            for path in files:
                progress.update(task, current=path.name)
                await publisher.publish_file(path, fmt)
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


def run(args: argparse.Namespace) -> int:
    """Handler of ``msht publish``."""
    # Imported here so `msht --help` works without the signing stack being importable.
    from adapters.exchange.signed import sealer_from_settings

    settings = load_settings()
    agency = AgencyId(args.agency)
    sealer = sealer_from_settings(settings, agency)
    files = expand(args.files)
    console = Console(stderr=True)
    report = asyncio.run(
        publish_files(
            settings, sealer, files, args.format,
            rejected_to_topic=args.rejected_topic, console=console,
        )
    )  # fmt: skip
    summarise(report, sys.stdout)
    return 1 if report.rejected else 0
