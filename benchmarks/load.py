"""Offered load: produce signed referrals to the ingress topic as the police publisher does.

The envelopes are made beforehand by the police adapter path
(:func:`benchmarks.synthetic.sealed_referrals`, the same intake ``msht publish`` runs), so
the publisher's own CPU does not compete with the router during the timed phase. They are
produced exactly as :class:`adapters.intake.publisher.Publisher` produces them: idempotent
producer with ``acks=all``, keyed by subject, with the CloudEvents headers.

With a ``rate`` the sends follow a fixed schedule (event *i* at ``start + i / rate``), an
open-loop load: a slow router does not slow the publisher down, so queueing shows up as
latency, as it would for a real agency. Without a rate the events go as fast as the
producer takes them (saturation).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.intake.pipeline import ReadyEvent
from adapters.intake.publisher import cloudevents_headers
from broker.kafka import clients as kafka
from broker.settings import Settings
from broker.types import AgencyId

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A signed referral ready to produce: just what the producer needs (no payload dict)."""

    event_id: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]

    @classmethod
    def of(cls, ready: ReadyEvent, agency: AgencyId) -> Prepared:
        """The record :class:`adapters.intake.publisher.Publisher` would produce for ``ready``."""
        return cls(
            event_id=ready.event_id,
            key=ready.event.subject.encode(),
            value=ready.envelope,
            headers=tuple(cloudevents_headers(ready, agency)),
        )


async def publish(
    settings: Settings,
    topic: str,
    events: Sequence[Prepared],
    *,
    rate: float | None = None,
    progress: Progress | None = None,
    progress_every: float = 5.0,
) -> dict[str, float]:
    """Produce ``events`` to ``topic``; returns each event id's publish time (``time.time()``).

    The publish time is taken just before the record is handed to the producer, so the
    latency measured from it includes the producer's own batching.
    """
    sent: dict[str, float] = {}
    pending: list[asyncio.Future[Any]] = []
    async with kafka.producer(settings) as producer:
        start = time.monotonic()
        last_report = start
        for index, item in enumerate(events):
            if rate is not None:
                delay = start + index / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            sent[item.event_id] = time.time()
            pending.append(
                await producer.send(
                    topic, value=item.value, key=item.key, headers=list(item.headers)
                )
            )
            if len(pending) >= 1_000:
                await asyncio.gather(*pending)
                pending.clear()
            now = time.monotonic()
            if progress is not None and now - last_report >= progress_every:
                last_report = now
                progress(f"published {index + 1:,}/{len(events):,} to {topic}")
        await asyncio.gather(*pending)
    return sent
