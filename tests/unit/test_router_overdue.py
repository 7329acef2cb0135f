"""A running router repeats its overdue-holds report, not only at start."""

from __future__ import annotations

import asyncio

import pytest

from broker.router import overdue
from broker.settings import Settings


async def test_overdue_holds_are_reported_at_start_and_again_after_each_period(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[Settings] = []

    async def fake(settings: Settings) -> tuple[()]:
        calls.append(settings)
        return ()

    monkeypatch.setattr(overdue, "overdue_holds", fake)
    task = asyncio.create_task(overdue.report_overdue_holds(Settings(), every=0.01))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(calls) >= 3


def test_the_period_is_a_day() -> None:
    assert overdue.DAILY_SECONDS == 86_400
