"""The review queue: what waits, for whom, why and since when, from the held topic alone.

The held topic holds two kinds of record: held records (one per held event) and closures
(one per hold and partner the router decided). A hold waits for a partner until a closure
for that partner follows it. Pure: the caller reads the topic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from broker.errors import ReviewError
from broker.review.held import Closure, HeldRecord, read_closure, read_held


@dataclass(frozen=True)
class Waiting:
    """One held event with the partners still waiting for a decision."""

    record: HeldRecord
    value: bytes = field(repr=False)
    """The held record's bytes, as a decision must carry them."""
    waiting: tuple[str, ...]
    closed: tuple[Closure, ...]

    def age(self, now: datetime) -> timedelta:
        """How long the event has been held."""
        return now - self.record.held_at

    def as_dict(self, now: datetime, warn_after: timedelta) -> dict[str, Any]:
        """The JSON form ``msht held list -o json`` prints (identifiers only)."""
        r = self.record
        return {
            "hold_id": r.hold_id,
            "event_id": r.event_id,
            "source": r.source,
            "subject": r.subject,
            "event_type": r.event_type,
            "held_at": r.held_at.isoformat(),
            "age_hours": round(self.age(now).total_seconds() / 3600, 1),
            "overdue": self.age(now) > warn_after,
            "waiting": [
                {"partner": h.partner, "guard": h.guard}
                for h in r.holds
                if h.partner in self.waiting
            ],
            "decided": [
                {
                    "partner": c.partner,
                    "verdict": c.verdict,
                    "outcome": c.outcome,
                    "reviewer": c.reviewer,
                    "decided_at": c.decided_at.isoformat(),
                }
                for c in self.closed
            ],
            "sealed_to": sorted(r.for_reviewers),
        }


@dataclass(frozen=True)
class Queue:
    """Every hold on the held topic, oldest first, and the records that could not be read."""

    holds: tuple[Waiting, ...]
    unreadable: int = 0

    def open(self) -> tuple[Waiting, ...]:
        """The holds with at least one partner still waiting."""
        return tuple(w for w in self.holds if w.waiting)

    def find(self, hold_id: str) -> Waiting:
        """The hold with this id; :class:`ReviewError` if there is none."""
        for w in self.holds:
            if w.record.hold_id == hold_id:
                return w
        raise ReviewError(f"hold {hold_id!r}: not on the held topic")

    def overdue(self, now: datetime, warn_after: timedelta) -> tuple[Waiting, ...]:
        """The waiting holds older than ``warn_after``."""
        return tuple(w for w in self.open() if w.age(now) > warn_after)


def build_queue(values: Iterable[bytes]) -> Queue:
    """The queue from the held topic's values in offset order (per partition)."""
    held: dict[str, tuple[HeldRecord, bytes]] = {}
    closures: dict[str, list[Closure]] = {}
    unreadable = 0
    for value in values:
        try:
            record = read_held(value)
        except ReviewError:
            try:
                closure = read_closure(value)
            except ReviewError:
                unreadable += 1
                continue
            closures.setdefault(closure.hold_id, []).append(closure)
            continue
        # A re-delivered event is held once: its first held record is the one decided.
        held.setdefault(record.hold_id, (record, value))
    return Queue(_waiting(held, closures), unreadable)


def _waiting(
    held: Mapping[str, tuple[HeldRecord, bytes]], closures: Mapping[str, list[Closure]]
) -> tuple[Waiting, ...]:
    out = []
    for hold_id, (record, value) in held.items():
        closed = tuple(closures.get(hold_id, ()))
        done = {c.partner for c in closed}
        waiting = tuple(h.partner for h in record.holds if h.partner not in done)
        out.append(Waiting(record, value, waiting, closed))
    return tuple(sorted(out, key=lambda w: (w.record.held_at, w.record.hold_id)))
