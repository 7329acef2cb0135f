"""At start and then daily, the router names every hold that has waited longer than
``MSHT_HELD_WARN_HOURS``.

Nothing waits forever unnoticed: an overdue hold is logged as a warning with its hold id,
event id, source, the partners still waiting and its age (identifiers only). A held topic
that cannot be read is logged and does not stop the router: routing matters more.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from broker.audit.reader import read_audit_topic
from broker.errors import MshtError
from broker.logging import get_logger
from broker.review.queue import Waiting, build_queue
from broker.settings import Settings

_log = get_logger(__name__)


async def overdue_holds(settings: Settings, now: datetime | None = None) -> tuple[Waiting, ...]:
    """The holds still waiting for a decision after ``settings.held_warn_hours``, logged."""
    try:
        entries = await read_audit_topic(settings, settings.held_topic, timeout_s=60.0)
    except MshtError as exc:
        _log.warning(
            "held topic not read for overdue holds", topic=settings.held_topic, error=str(exc)
        )
        return ()
    ordered = sorted(entries, key=lambda e: (e.partition, e.offset))
    when = now or datetime.now(UTC)
    overdue = build_queue(e.value for e in ordered).overdue(
        when, timedelta(hours=settings.held_warn_hours)
    )
    for w in overdue:
        _log.warning(
            "hold waiting for a decision longer than allowed",
            hold=w.record.hold_id,
            event_id=w.record.event_id,
            agency=w.record.source,
            waiting=list(w.waiting),
            hours=round(w.age(when).total_seconds() / 3600, 1),
        )
    return overdue


DAILY_SECONDS = 24 * 3600.0
"""How often a running router repeats the overdue report after the one at start."""


async def report_overdue_holds(settings: Settings, every: float = DAILY_SECONDS) -> None:
    """Log the overdue holds at start and then every ``every`` seconds, until cancelled."""
    while True:
        await overdue_holds(settings)
        await asyncio.sleep(every)
