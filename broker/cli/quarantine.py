"""``msht quarantine list | show ID | replay ID...``: inspect and replay quarantined inputs.

Reads the quarantine topic (``MSHT_QUARANTINE_TOPIC``) committed-only, as the operator
principal ``msht provision`` grants READ on it. ``list`` and ``show`` print identifiers,
the reason and where the input came from; never the payload (sealed or not).

``replay`` sends the original bytes and key back to the ingress topic and partition they
came from, with the header ``msht-replay-of: <quarantine topic>:<partition>:<offset>``; the
router checks them exactly as the first time (signature, trust store, topic, time) and copies
the link into the audit record (``replay_of``). Writing to an agency's ingress topic needs
WRITE on it: the operator is not granted that by ``msht provision`` (only the agency writes
its ingress topic), so a replay is run with a grant made for it and removed after it
(docs/DEPLOY.md, "Replaying quarantine").
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from broker.audit.quarantine import (
    REPLAY_HEADER,
    QuarantineEntry,
    check_replayable,
    entry_of,
    select,
)
from broker.audit.reader import read_audit_topic
from broker.kafka import clients as kafka
from broker.settings import Settings, load_settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``msht quarantine list``, ``show`` and ``replay``."""
    parser = sub.add_parser(
        "quarantine",
        help="list, show and replay quarantined inputs",
        description="Inspect the quarantine topic and replay inputs after a fix.",
    )
    actions = parser.add_subparsers(dest="quarantine_command", metavar="ACTION", required=True)
    listing = actions.add_parser(
        "list",
        help="one line per quarantined input: id, time, reason, source, event id",
        description="List the quarantine topic's records (identifiers and reasons only).",
    )
    listing.add_argument("--reason", default=None, help="only records with this reason")
    listing.add_argument("-o", "--output", choices=("table", "json"), default="table")
    listing.set_defaults(handler=run_list)
    show = actions.add_parser(
        "show",
        help="every identifier of one quarantined input",
        description="Show one quarantine record by the id 'list' prints (partition:offset).",
    )
    show.add_argument("id", metavar="ID", help="partition:offset on the quarantine topic")
    show.add_argument("-o", "--output", choices=("text", "json"), default="text")
    show.set_defaults(handler=run_show)
    replay = actions.add_parser(
        "replay",
        help="send quarantined inputs back to the ingress topic they came from",
        description=(
            "Send each named input's original bytes back to its ingress topic and partition, "
            "with the header msht-replay-of naming the quarantine record; the router decides "
            "it again and its audit record links to the quarantine record. Needs WRITE on the "
            "ingress topic (docs/DEPLOY.md)."
        ),
    )
    replay.add_argument("ids", nargs="+", metavar="ID", help="partition:offset (repeatable)")
    replay.add_argument("--dry-run", action="store_true", help="say what would be sent")
    replay.set_defaults(handler=run_replay)


async def read_quarantine(settings: Settings) -> list[QuarantineEntry]:
    """Every committed record of the quarantine topic, as entries."""
    topic = str(settings.quarantine_topic)
    found = await read_audit_topic(settings, topic)
    return [
        entry_of(
            topic,
            e.partition,
            e.offset,
            key=e.key,
            value=e.value,
            headers=e.headers,
            timestamp_ms=e.timestamp_ms,
        )
        for e in found
    ]


async def replay(settings: Settings, entries: Sequence[QuarantineEntry]) -> list[str]:
    """Produce each entry's original bytes to its source topic and partition; returns where
    each went (``topic:partition:offset``). Every entry is checked before any is sent."""
    for entry in entries:
        check_replayable(entry)
    sent: list[str] = []
    async with kafka.producer(settings) as producer:
        for entry in entries:
            assert entry.source_topic is not None  # checked above
            meta = await producer.send_and_wait(
                entry.source_topic,
                entry.value,
                key=entry.key,
                partition=entry.source_partition,
                headers=[(REPLAY_HEADER, entry.link.encode("utf-8"))],
            )
            sent.append(f"{meta.topic}:{meta.partition}:{meta.offset}")
    return sent


def _table(entries: Sequence[QuarantineEntry]) -> Table:
    table = Table(title="quarantine")
    for column in ("id", "time", "reason", "source", "event id", "from", "replay of"):
        table.add_column(column, overflow="fold")
    for e in entries:
        origin = f"{e.source_topic}:{e.source_partition}:{e.source_offset}"
        table.add_row(
            e.id,
            e.time.strftime("%Y-%m-%d %H:%M:%S"),
            escape(e.reason),
            escape(e.source or "?"),
            escape(e.event_id or "?"),
            escape(origin),
            escape(e.replay_of or ""),
        )
    return table


def run_list(args: argparse.Namespace, settings: Settings | None = None) -> int:
    """Entry point of ``msht quarantine list``."""
    settings = settings or load_settings()
    entries = asyncio.run(read_quarantine(settings))
    if args.reason:
        entries = [e for e in entries if e.reason == args.reason]
    if args.output == "json":
        print(json.dumps([e.summary() for e in entries], indent=2))
        return 0
    console = Console()
    if entries:
        console.print(_table(entries))
    console.print(f"{len(entries)} quarantined input(s)")
    return 0


def run_show(args: argparse.Namespace, settings: Settings | None = None) -> int:
    """Entry point of ``msht quarantine show``."""
    settings = settings or load_settings()
    [entry] = select(asyncio.run(read_quarantine(settings)), [args.id])
    summary = entry.summary()
    if args.output == "json":
        print(json.dumps(summary, indent=2))
        return 0
    width = max(len(k) for k in summary)
    for name, value in summary.items():
        print(f"{name:<{width}}  {'' if value is None else value}")
    return 0


def run_replay(args: argparse.Namespace, settings: Settings | None = None) -> int:
    """Entry point of ``msht quarantine replay``."""
    settings = settings or load_settings()
    entries = select(asyncio.run(read_quarantine(settings)), args.ids)
    for entry in entries:
        check_replayable(entry)
    if args.dry_run:
        for entry in entries:
            print(f"would replay {entry.id} ({entry.reason}) to {entry.source_topic}")
        return 0
    for entry, where in zip(entries, asyncio.run(replay(settings, entries)), strict=True):
        print(f"replayed {entry.id} ({entry.reason}) to {where}")
    return 0
