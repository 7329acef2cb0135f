"""``msht held``: the review queue of held events, and a reviewer's release or refusal.

``list`` shows what waits, for whom, why (the guard) and since when, oldest first (``-o
json`` for scripts); holds older than ``MSHT_HELD_WARN_HOURS`` are marked overdue. ``show``
opens what the router sealed to the reviewer (the restriction text, the markings and the
event) with the reviewer's X25519 key. ``release`` and ``refuse`` publish a decision signed
with the reviewer's Ed25519 key to the decisions topic; the router carries it out once and
audits it. The reviewer is ``--reviewer`` or ``MSHT_REVIEWER``; their keys are in the key
directory (``msht keys generate --agency <reviewer>``). See docs/REVIEW.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table

from broker.cli.keys import emit
from broker.crypto.encryption_keys import load_private_key
from broker.crypto.keyfiles import encryption_key_files
from broker.crypto.trust_signature import trust_store_from_settings
from broker.errors import ConfigError
from broker.review.deciding import check_router_signed, load_reviewer_key, sign_decision
from broker.review.decision import Verdict
from broker.review.held import open_for_reviewer
from broker.review.queue import Queue, Waiting
from broker.router.review_queue import read_held_queue, send_decision
from broker.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``msht held list|show|release|refuse``."""
    parser = sub.add_parser(
        "held",
        help="review held events: list, show, release or refuse them",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="held_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="what waits, for whom, why, since when")
    listing.add_argument("-o", "--output", choices=("table", "json"), default="table")
    listing.add_argument("--all", action="store_true", help="also holds already decided")
    listing.set_defaults(handler=_list)
    show = actions.add_parser("show", help="open a hold with the reviewer's key")
    show.add_argument("hold_id")
    show.add_argument("--reviewer", default=None, help="reviewer id (default: MSHT_REVIEWER)")
    show.set_defaults(handler=_show)
    for verdict in Verdict:
        decide = actions.add_parser(
            verdict.value, help=f"{verdict.value} a hold for one partner (a signed decision)"
        )
        decide.add_argument("hold_id")
        decide.add_argument("--partner", required=True)
        decide.add_argument("--reason", required=True)
        decide.add_argument("--reviewer", default=None, help="reviewer id (default: MSHT_REVIEWER)")
        decide.set_defaults(handler=_decide, verdict=verdict)


def read_queue(settings: Settings) -> Queue:
    """The review queue from the whole held topic (committed records only)."""
    return asyncio.run(read_held_queue(settings))


def _reviewer(settings: Settings, given: str | None) -> str:
    reviewer = given or settings.reviewer
    if not reviewer:
        raise ConfigError("reviewer: give --reviewer or set MSHT_REVIEWER")
    return reviewer


def _warn_after(settings: Settings) -> timedelta:
    return timedelta(hours=settings.held_warn_hours)


def _list(args: argparse.Namespace) -> int:
    settings = Settings()
    queue = read_queue(settings)
    now = datetime.now(UTC)
    holds = queue.holds if args.all else queue.open()
    rows = [w.as_dict(now, _warn_after(settings)) for w in holds]
    if args.output == "json":
        emit([json.dumps(rows, indent=2)])
        return 0
    table = Table(title=f"held events ({len(rows)}), oldest first")
    for column in ("hold", "event", "source", "waiting for (guard)", "held at", "age"):
        table.add_column(column)
    for row in rows:
        waiting = ", ".join(f"{w['partner']} ({w['guard']})" for w in row["waiting"]) or "-"
        age = f"{row['age_hours']}h" + (" OVERDUE" if row["overdue"] else "")
        table.add_row(row["hold_id"], row["event_id"], row["source"], waiting, row["held_at"], age)
    Console().print(table)
    if queue.unreadable:
        emit([f"{queue.unreadable} record(s) on the held topic could not be read"])
    return 0


def _verified(settings: Settings, waiting: Waiting) -> None:
    """The held record must be the router's: a reviewer decides only what the router held."""
    check_router_signed(trust_store_from_settings(settings, component="held").store, waiting)


def _show(args: argparse.Namespace) -> int:
    settings = Settings()
    reviewer = _reviewer(settings, args.reviewer)
    waiting = read_queue(settings).find(args.hold_id)
    _verified(settings, waiting)
    passphrase = settings.key_passphrase_bytes()
    keys = [
        load_private_key(p, passphrase=passphrase).private_key
        for p in encryption_key_files(settings.key_dir_path, reviewer)
    ]
    if not keys:
        raise ConfigError(f"key_dir: no X25519 key for {reviewer} in {settings.key_dir_path}")
    opened: dict[str, Any] = open_for_reviewer(waiting.record, reviewer, keys)
    summary = waiting.as_dict(datetime.now(UTC), _warn_after(settings))
    emit([json.dumps({**summary, "opened": opened}, indent=2, ensure_ascii=False)])
    return 0


def _decide(args: argparse.Namespace) -> int:
    settings = Settings()
    reviewer = _reviewer(settings, args.reviewer)
    waiting = read_queue(settings).find(args.hold_id)
    _verified(settings, waiting)
    signing = load_reviewer_key(settings.key_dir_path, reviewer, settings.key_passphrase_bytes())
    value = sign_decision(
        waiting,
        partner=args.partner,
        verdict=args.verdict,
        reason=args.reason,
        reviewer=signing,
        decided_at=datetime.now(UTC),
    )
    asyncio.run(send_decision(settings, waiting.record.hold_id, value))
    emit(
        [
            f"{args.verdict.value} of {args.hold_id} for {args.partner} signed by {reviewer} "
            f"({signing.key_id}) and sent to {settings.decisions_topic}; the router carries it "
            "out and audits it (msht audit query)"
        ]
    )
    return 0
