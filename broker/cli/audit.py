"""``msht audit verify`` and ``msht audit query``: check and search the audit trail.

Both read the whole audit topic (``read_committed``, every partition, from the earliest
offset to the high watermark taken at the start) or a JSON-lines copy of it (``--from-file``,
one record per line, in topic order). ``verify`` exits 0 when every chain holds, 1 when any
break is found, and 2 on a usage, file or connection error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from broker.audit import AuditRecord, ChainBreak, ChainReport, parse_record, query, verify_chain
from broker.audit.reader import AuditEntry, read_audit_topic
from broker.audit.verify import PARALLEL_MIN_RECORDS, ChainTally, default_jobs, router_keys
from broker.errors import AuditChainError, ConfigError
from broker.review.closing import hold_states
from broker.settings import Settings, load_settings
from broker.types import KeyId

EXIT_INTACT = 0
EXIT_BROKEN = 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``msht audit verify`` and ``msht audit query``."""
    parser = sub.add_parser(
        "audit",
        help="verify the audit trail's hash chains or search it",
        description="Check and search the router's hash-chained audit trail (docs/AUDIT.md).",
    )
    actions = parser.add_subparsers(dest="audit_command", metavar="ACTION", required=True)

    verify = actions.add_parser(
        "verify",
        help="check every chain of the audit trail and name each broken link",
        description=(
            "Read the whole audit topic and check every chain: each record's digest, its link "
            "to the record before it, its seq and input offset, and (with a trust store) the "
            "router's signature. Exit 0 when intact, 1 when any break is found, 2 on a usage, "
            "file or connection error."
        ),
    )
    _add_source_arguments(verify)
    verify.add_argument(
        "--trust-store",
        type=Path,
        default=None,
        help=(
            "check every record's signature against the router keys (agencies with "
            "'router: true') of this trust store; default: the configured trust store if it "
            "exists and lists a router key, else signatures are not checked"
        ),
    )
    verify.add_argument(
        "--head",
        dest="heads",
        action="append",
        default=[],
        metavar="CHAIN=DIGEST",
        type=_head,
        help="a head digest noted at an earlier check; reported if records were cut off after it",
    )
    verify.add_argument(
        "--jobs",
        type=_jobs,
        default=None,
        metavar="N",
        help=(
            "check records in N processes: each record's digest, canonical form and signature "
            "in parallel, the links in order here; the same checks and report as N=1 (one "
            f"process). Used from {PARALLEL_MIN_RECORDS} records on; default: one per CPU"
        ),
    )
    verify.set_defaults(handler=run_verify)

    search = actions.add_parser(
        "query",
        help="print the audit records matching every filter given",
        description=(
            "Print the audit records matching every filter given. Records hold identifiers "
            "only (event id, subject, partners, rules), never personal data."
        ),
    )
    _add_source_arguments(search)
    search.add_argument("--event-id", default=None, help="records about this event id")
    search.add_argument("--partner", default=None, help="records deciding anything for a partner")
    search.add_argument("--subject", default=None, help="records about this case/referral ref")
    search.add_argument("--since", type=_when, default=None, help="from this ISO time (inclusive)")
    search.add_argument("--until", type=_when, default=None, help="before this ISO time")
    search.add_argument(
        "--outcome",
        choices=("delivered", "withheld", "held"),
        default=None,
        help="records with this outcome (for --partner, if given); `held` lists events "
        "waiting for a human decision (SIENA H3, 3x5x2 code C)",
    )
    search.add_argument(
        "-o",
        "--output",
        choices=("text", "json"),
        default="text",
        help="text: a table; json: one JSON record per line (default: text)",
    )
    search.add_argument("--json", action="store_true", help="the same as -o json")
    search.set_defaults(handler=run_query)


def _add_source_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--topic", default=None, help="audit topic (default: settings)")
    parser.add_argument(
        "--from-file",
        type=Path,
        default=None,
        metavar="FILE.jsonl",
        help="read records from a JSON-lines file (one record per line) instead of Kafka",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds to wait for open transactions when reading to the end (default: 120)",
    )


def _when(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} processes: give at least 1")
    return value


def _head(text: str) -> tuple[str, str]:
    chain, sep, digest = text.rpartition("=")
    if not sep or not chain or len(digest) != 64:
        raise argparse.ArgumentTypeError(f"{text!r} is not CHAIN=<64 hex digest>")
    return chain, digest.lower()


# --- reading -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """The records read and how to say where each one came from."""

    entries: tuple[AuditEntry, ...]
    from_file: bool

    @property
    def values(self) -> list[bytes]:
        return [entry.value for entry in self.entries]

    def where(self, index: int) -> str | None:
        if not 0 <= index < len(self.entries):
            return None
        entry = self.entries[index]
        if self.from_file:
            return f"line {entry.offset}"
        return f"partition {entry.partition} offset {entry.offset}"


def _read_file(path: Path) -> _Source:
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise ConfigError(f"--from-file {path}: cannot read ({exc.strerror})") from exc
    # Line numbers stand in for offsets; blank lines (a trailing newline) are not records.
    entries = tuple(
        AuditEntry(0, number, line) for number, line in enumerate(lines, start=1) if line.strip()
    )
    return _Source(entries, from_file=True)


def _settings(*, connects: bool = True) -> Settings:
    # Reading the audit topic needs a principal of its own, like every Kafka client; finding
    # the trust store's path does not.
    return load_settings(principal=connects)


@contextmanager
def _progress_bar() -> Iterator[Progress]:
    console = Console(stderr=True)
    bar = Progress(
        TextColumn("reading audit topic"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.completed}/{task.total} offsets"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    with bar:
        yield bar


def _read(args: argparse.Namespace) -> _Source:
    if args.from_file is not None:
        if args.topic is not None:
            raise ConfigError("--from-file and --topic: give one or the other")
        return _read_file(args.from_file)
    settings = _settings()
    with _progress_bar() as bar:
        task = bar.add_task("read", total=None)

        def progress(read: int, total: int) -> None:
            bar.update(task, completed=read, total=total)

        entries = asyncio.run(
            read_audit_topic(settings, args.topic, progress=progress, timeout_s=args.timeout)
        )
    return _Source(tuple(entries), from_file=False)


# --- verify ------------------------------------------------------------------------------


def _trusted_keys(args: argparse.Namespace) -> tuple[dict[KeyId, Ed25519PublicKey] | None, str]:
    """The router keys to check signatures with (or None) and a note saying where from."""
    if args.trust_store is not None:
        keys = router_keys(args.trust_store)
        if not keys:
            raise ConfigError(
                f"--trust-store {args.trust_store}: no agency with 'router: true' has an "
                "Ed25519 signing key"
            )
        return keys, f"router signatures checked against {args.trust_store}"
    default = _settings(connects=False).trust_store_path
    if default.is_file():
        keys = router_keys(default)
        if keys:
            return keys, f"router signatures checked against {default}"
        return None, f"signatures not checked: {default} lists no router signing key"
    return None, "signatures not checked: no trust store (give --trust-store)"


def _signature_status(summary: ChainTally, checked: bool) -> str:
    if not checked:
        if summary.signed == 0:
            return "unsigned (not checked)"
        return f"{summary.signed}/{summary.records} signed (not checked)"
    if summary.valid == summary.records:
        return f"all valid ({', '.join(sorted(summary.signers))})"
    return f"{summary.records - summary.valid}/{summary.records} missing or invalid"


def _chain_table(report: ChainReport, checked: bool) -> Table:
    broken = {b.chain for b in report.breaks if b.chain is not None}
    table = Table(title=f"audit trail: {report.records} records, {len(report.heads)} chains")
    for column in ("chain", "records", "first seq", "last seq", "head digest", "signatures"):
        table.add_column(column, overflow="fold")
    table.add_column("status")
    for chain in sorted(report.heads):
        head = report.heads[chain]
        summary = report.tallies.get(chain) or ChainTally(0, 0, 0, 0, frozenset())
        table.add_row(
            chain,
            str(summary.records),
            str(summary.first_seq) if summary.records else "-",
            str(head.next_seq - 1),
            head.digest,
            _signature_status(summary, checked),
            "[red]BROKEN[/]" if chain in broken else "[green]intact[/]",
        )
    return table


def _describe(problem: ChainBreak, source: _Source) -> str:
    parts = [f"chain {problem.chain or '?'}"]
    if problem.seq is not None:
        parts.append(f"seq {problem.seq}")
    if problem.event_id is not None:
        parts.append(f"event {problem.event_id}")
    where = source.where(problem.index)
    if where is not None:
        parts.append(where)
    text = f"BREAK {', '.join(parts)}: {problem.reason}"
    if problem.expected is not None or problem.found is not None:
        text += f" (expected {problem.expected}, found {problem.found})"
    return text


def run_verify(args: argparse.Namespace) -> int:
    """Print each chain's summary and every break; 0 intact, 1 broken (2 via MshtError)."""
    keys, note = _trusted_keys(args)
    source = _read(args)
    values = source.values
    jobs = args.jobs or default_jobs()
    report = verify_chain(values, router_keys=keys, known_heads=dict(args.heads) or None, jobs=jobs)
    console = Console(width=200)
    if report.heads:
        console.print(_chain_table(report, keys is not None))
    print(note)
    for problem in report.breaks:
        print(_describe(problem, source))
    if report.ok:
        print(f"audit trail intact: {report.records} records in {len(report.heads)} chains")
        return EXIT_INTACT
    print(
        f"audit trail BROKEN: {len(report.breaks)} problem(s) in {report.records} records; "
        f"first: {_describe(report.breaks[0], source).removeprefix('BREAK ')}"
    )
    return EXIT_BROKEN


# --- query -------------------------------------------------------------------------------


def _outcomes(record: AuditRecord) -> str:
    lines = []
    for o in record.outcomes:
        line = f"{o.partner}: {o.outcome} by {o.rule}"
        if o.view:
            line += f" ({o.view})"
        if o.lawful_basis:
            line += f" basis {o.lawful_basis}"
        lines.append(line)
    return "\n".join(lines) or "-"


def run_query(args: argparse.Namespace) -> int:
    """Print matching records (table or JSON lines); 1 when the trail has an unreadable record."""
    source = _read(args)
    try:
        found = list(
            query(
                source.values,
                event_id=args.event_id,
                partner=args.partner,
                subject=args.subject,
                since=args.since,
                until=args.until,
                outcome=args.outcome,
            )
        )
    except AuditChainError as exc:
        print(f"msht: audit trail unreadable: {exc} (run `msht audit verify`)", file=sys.stderr)
        return EXIT_BROKEN
    # For held events, per held partner the reviewer's decision that closed it or that it is
    # still open, and how long it has waited (docs/REVIEW.md).
    now = datetime.now(UTC)
    trail = [parse_record(v) for v in source.values] if args.outcome == "held" else []
    if args.json or args.output == "json":
        for record in found:
            if args.outcome != "held":
                print(record.to_bytes().decode("utf-8"))
                continue
            document = json.loads(record.to_bytes())
            document["review"] = [s.as_dict() for s in hold_states(record, trail, now)]
            print(json.dumps(document, separators=(",", ":"), ensure_ascii=False))
        return 0
    if not found:
        print("no matching audit records", file=sys.stderr)
        return 0
    table = Table(title=f"{len(found)} matching audit record(s)", show_lines=True)
    for column in ("time", "chain / seq", "kind", "event", "source", "subject", "outcomes"):
        table.add_column(column, overflow="fold")
    for record in found:
        states = hold_states(record, trail, now) if trail else []
        closed = "".join(f"\nreview {state.describe()}" for state in states)
        table.add_row(
            record.time.strftime("%Y-%m-%d %H:%M:%S"),
            f"{record.chain}\nseq {record.seq}",
            record.kind,
            record.event_id,
            record.source,
            record.subject,
            _outcomes(record) + closed,
        )
    Console(width=200).print(table)
    return 0
