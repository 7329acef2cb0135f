"""The demo's closing summary as rich tables, built only from what the run observed.

Tables: every decided event against every partner (delivered in which view, withheld,
held, and then released or refused by a reviewer); why each event was withheld or held; the
reviewers' decisions and what the router did with them; the status notices the senders
received; the quarantined inputs; the native inputs the adapters refused; the files in the
outbox; the audit chain; the story's checks. The tables
show ids, types, rules and file names, never event content.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from broker.audit import RecipientOutcome
from broker.demo.observed import LOOPBACK_RULES, Observed, PublishedInput, ReviewOutcome


def short(event_id: str) -> str:
    """The first 8 characters of an event id, as the tables show it."""
    return event_id[:8]


def _where(item: PublishedInput) -> str:
    row = f" row {item.row}" if item.row is not None else ""
    return f"{item.file}{row}"


def _reviewed(review: ReviewOutcome) -> str:
    """What a reviewer decided and the router did, after a hold's cell."""
    who = f" by {review.said.reviewer}" if review.said else ""
    if review.outcome.outcome == "delivered":
        return f"\n[green]→ ✓ released{who}[/]"
    verdict = review.outcome.rule.removeprefix("review:")
    return f"\n[red]→ ✗ {verdict}d{who}[/]" + (
        "" if verdict == "refuse" else " [red](not carried out)[/]"
    )


def _cell(outcome: RecipientOutcome | None, review: ReviewOutcome | None = None) -> str:
    if outcome is None:
        return "[dim]?[/]"
    if outcome.outcome == "held" and review is not None:
        why = outcome.rule.removeprefix("guard:hold-")
        return f"[yellow]⏸ held ({why})[/]" + _reviewed(review)
    if outcome.outcome == "delivered":
        basis = f" ({outcome.lawful_basis})" if outcome.lawful_basis else ""
        if outcome.transfer is not None:
            basis += f" [transfer: {outcome.transfer.get('basis')}]"
        return f"[green]✓ {outcome.view}{basis}[/]"
    if outcome.outcome == "held":
        why = outcome.rule.removeprefix("guard:hold-")
        return f"[yellow]⏸ held ({why})[/]"
    if outcome.rule in LOOPBACK_RULES:
        return "[dim]·[/]"
    return f"[red]✗ {outcome.rule.removeprefix('guard:')}[/]"


def _unique_inputs(observed: Observed) -> list[PublishedInput]:
    seen: set[str] = set()
    unique = []
    for item in observed.published:
        if item.event_id not in seen:
            seen.add(item.event_id)
            unique.append(item)
    return unique


MATRIX_WIDTH = 150
"""Below this console width the partner matrix becomes one outcome line per partner."""

_LEGEND = (
    "✓ delivered in that view, ✗ withheld by that rule, ⏸ held for a human decision "
    "(→ what the reviewer decided), · not subscribed or the sender"
)


def _from(item: PublishedInput, copies: int) -> str:
    text = f"{item.agency}\n[dim]{_where(item)}[/]"
    if copies > 1:
        text += f"\n[dim]published {copies}x, decided once[/]"
    return text


def events_table(observed: Observed, width: int = MATRIX_WIDTH) -> Table:
    """One row per decided event: a column per partner, or (narrow) a line per partner."""
    decisions = observed.decisions()
    copies = Counter(p.event_id for p in observed.published)
    matrix = width >= MATRIX_WIDTH
    legend = (
        _LEGEND
        if matrix
        else _LEGEND.replace(", · not subscribed or the sender", "")
        + "; partners not subscribed (or the sender) are left out"
    )
    table = Table(title=f"Events and what each partner got: {legend}", title_justify="left")
    table.add_column("event", no_wrap=True)
    table.add_column("type", overflow="fold")
    table.add_column("from", overflow="fold")
    if matrix:
        for partner in observed.partners:
            table.add_column(partner, overflow="fold")
    else:
        table.add_column("partner: outcome", overflow="fold")
    reviews = observed.review_outcomes()
    for item in _unique_inputs(observed):
        record = decisions.get(item.event_id)
        if record is None:
            continue
        by_partner: dict[str, RecipientOutcome] = {str(o.partner): o for o in record.outcomes}
        cells = {
            p: _cell(by_partner.get(p), reviews.get((p, item.event_id))) for p in observed.partners
        }
        if matrix:
            outcomes = [cells[p] for p in observed.partners]
        else:
            lines = [f"{p}: {cell}" for p, cell in cells.items() if cell != "[dim]·[/]"]
            outcomes = ["\n".join(lines) or "[dim]nobody[/]"]
        table.add_row(
            short(item.event_id), item.event_type, _from(item, copies[item.event_id]), *outcomes
        )
    return table


def reasons_table(observed: Observed) -> Table:
    """Why events were withheld from or held for partners that subscribe to them.

    Events with the same outcome, rule and reason for the same partner share a row.
    """
    types = {p.event_id: p.event_type for p in observed.published}
    rows: dict[tuple[str, str, str, str, str], list[str]] = {}
    for event_id, record in observed.decisions().items():
        for o in record.outcomes:
            if o.outcome == "delivered" or o.rule in LOOPBACK_RULES:
                continue
            key = (types.get(event_id, "?"), o.partner, o.outcome, o.rule, o.reason or "")
            rows.setdefault(key, []).append(short(event_id))
    table = Table(title="Withheld and held, and why", title_justify="left")
    for column in ("event(s)", "type", "partner", "outcome", "rule", "reason"):
        table.add_column(column, overflow="fold")
    for (event_type, partner, outcome, rule, reason), events in rows.items():
        colour = "yellow" if outcome == "held" else "red"
        table.add_row(
            " ".join(events), event_type, partner, f"[{colour}]{outcome}[/]", rule, reason
        )
    return table


def review_table(observed: Observed) -> Table:
    """Every hold: open, or the reviewer's decision and what the router did with it."""
    types = {p.event_id: p.event_type for p in observed.published}
    sources = {p.event_id: p.agency for p in observed.published}
    reviews = observed.review_outcomes()
    table = Table(
        title="Held for a human decision, and what the reviewers decided", title_justify="left"
    )
    for column in ("event", "type", "from", "held for", "decision", "reviewer", "reason", "result"):
        table.add_column(column, overflow="fold")
    for event_id, record in observed.decisions().items():
        for o in record.outcomes:
            if o.outcome != "held":
                continue
            held = f"{o.partner}\n[dim]{o.rule}[/]"
            review = reviews.get((str(o.partner), event_id))
            who = [short(event_id), types.get(event_id, "?"), sources.get(event_id, "?"), held]
            if review is None:
                table.add_row(*who, "[yellow]⏸ open[/]", "-", "-", "waits in `msht held list`")
                continue
            said = review.said
            delivered = review.outcome.outcome == "delivered"
            copies = sum(
                1 for r in observed.rendered if (r.partner, r.event_id) == (o.partner, event_id)
            )
            if delivered:
                result = f"[green]delivered ({copies}x rendered)[/]"
            else:
                result = f"[red]never delivered ({review.outcome.rule})[/]"
                if said is not None and said.not_carried_out:
                    result += f": {said.not_carried_out}"
            decision = review.outcome.rule.removeprefix("review:")
            colour = "green" if decision == "release" else "red"
            table.add_row(
                *who,
                f"[{colour}]{decision}[/]",
                said.reviewer if said else "?",
                said.reason if said else (review.outcome.reason or ""),
                result,
            )
    return table


def notices_table(observed: Observed) -> Table:
    """The status notices the senders received about their held events."""
    table = Table(title="Status notices the senders received", title_justify="left")
    for column in ("to", "event", "status", "for partner(s)", "reviewer"):
        table.add_column(column, overflow="fold")
    for n in observed.notices:
        table.add_row(
            n.recipient, short(n.event_id), n.status, ", ".join(n.partners), n.reviewer or "-"
        )
    return table


def quarantine_table(observed: Observed) -> Table:
    """Inputs the router refused to decide, with the reason it gave."""
    table = Table(title="Quarantined inputs (never delivered)", title_justify="left")
    for column in ("event", "claimed source", "input", "reason", "detail"):
        table.add_column(column, overflow="fold")
    for item in observed.published:
        q = observed.quarantine_of(item)
        if q is None:
            continue
        label = "forged: " if item.forged else ""
        table.add_row(
            short(item.event_id),
            item.agency,
            f"{label}{_where(item)}\n[dim]{q.source_topic} offset {q.offset}[/]",
            f"[red]{q.reason}[/]",
            q.error,
        )
    return table


def rejected_table(observed: Observed) -> Table:
    """Native documents or rows the agencies' adapters refused, field by field."""
    table = Table(title="Native input the adapters rejected (not published)", title_justify="left")
    for column in ("agency", "file", "row", "field", "reason"):
        table.add_column(column, overflow="fold")
    for r in observed.rejected:
        table.add_row(
            r.agency,
            r.file,
            "-" if r.row is None else str(r.row),
            r.location,
            r.reason,
        )
    return table


def outbox_table(observed: Observed, directory: Path) -> Table:
    """The files the partners' subscribers wrote, in each partner's native format."""
    table = Table(title=f"Outbox: {directory / 'outbox'}", title_justify="left")
    for column in ("partner", "file", "type", "format"):
        table.add_column(column, overflow="fold")
    for r in sorted(observed.rendered, key=lambda r: (r.partner, r.event_type, r.event_id)):
        path = r.path.relative_to(directory) if r.path is not None else Path("-")
        table.add_row(r.partner, str(path), r.event_type, r.fmt)
    return table


def chain_lines(observed: Observed, signed_by: str) -> list[str]:
    """The audit chain's result, as ``msht audit verify`` would state it."""
    report = observed.chain
    if report is None:
        return ["[red]audit trail not verified[/]"]
    lines = [f"audit records: {report.records} in {len(report.heads)} chains; {signed_by}"]
    for problem in report.breaks:
        lines.append(f"[red]BREAK {problem}[/]")
    if report.ok:
        lines.append(
            f"[bold green]audit trail intact: {report.records} records in "
            f"{len(report.heads)} chains[/]"
        )
    else:
        lines.append(f"[bold red]audit trail BROKEN: {len(report.breaks)} problem(s)[/]")
    return lines


def origin_line(observed: Observed) -> str:
    """How many views verified against their originating agency's own signature."""
    verified, total = len(observed.originator_verified()), len(observed.rendered)
    colour = "green" if verified == total else "red"
    return (
        f"[bold {colour}]views verified against the originating agency's signature: "
        f"{verified} of {total}[/]"
    )


def checks_table(observed: Observed) -> Table:
    """The story's expectations and whether each held."""
    table = Table(title="What the demo expected", title_justify="left")
    for column in ("", "expectation", "seen"):
        table.add_column(column, overflow="fold")
    for check in observed.checks:
        mark = "[green]✓[/]" if check.ok else "[red]✗[/]"
        table.add_row(mark, check.name, check.detail)
    return table


def print_summary(
    console: Console,
    observed: Observed,
    *,
    directory: Path,
    signed_by: str,
    problems: Sequence[str],
) -> None:
    """Print every table, the audit result and the verdict."""
    console.rule("[bold]Summary")
    for table in (
        events_table(observed, console.width),
        reasons_table(observed),
        review_table(observed),
        notices_table(observed),
        quarantine_table(observed),
        rejected_table(observed),
        outbox_table(observed, directory),
        checks_table(observed),
    ):
        console.print(table)
        console.print()
    for line in chain_lines(observed, signed_by):
        console.print(line)
    console.print(origin_line(observed))
    if problems:
        console.print(f"[bold red]demo incomplete: {len(problems)} thing(s) did not happen:[/]")
        for problem in problems:
            console.print(f"  [red]- {problem}[/]")
