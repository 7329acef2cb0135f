"""Watching a run from the outside: topic tails and the partners' subscribers, in the background.

A :class:`TopicTail` reads one topic ``read_committed`` from its start into memory for as
long as the run lasts (the demo reads its own small, fresh topics, so everything fits).
:class:`Subscribers` runs every partner's :class:`~adapters.rendering.subscriber.Subscriber`, each
rendering into ``<outbox>/<partner>/`` as the partner would. :func:`until` polls a
condition with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from adapters.exchange.signed import opener_from_settings
from adapters.registry import FAMILY_OF_PARTNER_KIND
from adapters.rendering.subscriber import Subscriber
from broker.kafka import clients as kafka
from broker.policy import LoadedPolicy
from broker.settings import Settings
from broker.types import PartnerId

_POLL = 0.2


async def until(condition: Callable[[], bool], timeout: float) -> bool:  # noqa: ASYNC109
    """Wait until ``condition()`` is true; False when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_POLL)
    return True


class TopicTail:
    """Every committed record of one topic, read in the background while the run lasts."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self._settings = settings
        self.topic = topic
        self.records: list[Any] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> TopicTail:
        self._task = asyncio.create_task(self._read(), name=f"tail {self.topic}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    def check(self) -> None:
        """Re-raise the reader's error, if it stopped with one."""
        if self._task is not None and self._task.done() and not self._task.cancelled():
            error = self._task.exception()
            if error is not None:
                raise error

    async def _read(self) -> None:
        async with kafka.consumer(self._settings, self.topic, group_id=None) as consumer:
            while not self._stop.is_set():
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    self.records.extend(records)


class Subscribers:
    """One running subscriber per partner of the policy, rendering into the outbox."""

    def __init__(self, settings: Settings, policy: LoadedPolicy, outbox: Path, group: str) -> None:
        self._settings = settings
        self._outbox = outbox
        self._group = group
        self._families = {
            p.id: FAMILY_OF_PARTNER_KIND.get(str(p.kind)) for p in policy.policy.partners
        }
        self.by_partner: dict[str, Subscriber] = {}
        self._stop = asyncio.Event()
        self._stack = contextlib.AsyncExitStack()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def partners(self) -> Sequence[str]:
        """The partners being watched, in policy order."""
        return tuple(self._families)

    async def __aenter__(self) -> Subscribers:
        await self._stack.__aenter__()
        try:
            for partner, family in self._families.items():
                pid = PartnerId(partner)
                subscriber = await self._stack.enter_async_context(
                    Subscriber.open(
                        self._settings,
                        pid,
                        opener_from_settings(self._settings, pid),
                        family=family,
                        outbox=self._outbox,
                        # The run's own group, so no earlier run's offsets apply.
                        group_id=f"{self._group}{partner}",
                    )
                )
                self.by_partner[partner] = subscriber
                self._tasks.append(
                    asyncio.create_task(subscriber.run(stop=self._stop), name=f"sub {partner}")
                )
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        self._stop.set()
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._stack.aclose()
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def check(self) -> None:
        """Re-raise the first subscriber error, if one stopped with an error."""
        for task in self._tasks:
            if task.done() and not task.cancelled():
                error = task.exception()
                if error is not None:
                    raise error
