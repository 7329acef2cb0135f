"""Publish native files into the exchange: validate, map, sign, produce; keep what is rejected.

Each valid document becomes a signed envelope produced to the agency's ingress topic by an
idempotent producer with ``acks=all``, keyed by its subject (so one case stays in order).
Every rejected document or row is kept: raw bytes and reasons under
``<state_dir>/rejected/<agency>/`` and, when asked, a record on the rejected topic.

A file counts as published only once the broker has acknowledged every one of its events;
a publisher killed mid-way and started again re-publishes the file, and because event ids
are derived from the content each re-published event carries the id it had before.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from adapters.exchange.seam import EventSealer
from adapters.intake.csvstream import Batch, batches, take_in_batch
from adapters.intake.parallel import ParallelIntake
from adapters.intake.pipeline import (
    AUTO,
    CSV_FORMAT,
    FileIntake,
    ReadyEvent,
    Rejection,
    take_in,
)
from adapters.intake.rejected import keep_rejected, reason_record
from broker.errors import ConfigError
from broker.kafka import aio
from broker.kafka import clients as kafka
from broker.kafka.protocols import Producer
from broker.kafka.records import Outgoing
from broker.logging import get_logger
from broker.settings import Settings
from broker.types import EventId, TopicName

_log = get_logger(__name__)

ProducerFactory = Callable[[Settings], AbstractAsyncContextManager[Producer]]
Progress = Callable[[int, int], None]
"""Called as ``progress(bytes_read, bytes_total)`` while a bulk CSV is published."""
BATCH_BYTES = 256 * 1024
"""The producer's batch size per partition. A signed referral with its identity fields sealed
to the router and its proof is ~7.5 KB, so aiokafka's default (16 KB) put two in a produce
request: a 10,000-row CSV was ~5,000 ``acks=all`` requests, each costing this process and
the broker CPU (issue 19). At 256 KB a bulk publish sends ~35 envelopes per request; it stays
well under the broker's default ``message.max.bytes`` (1 MB), and a single larger record is
still sent alone (``max_request_size`` bounds it, as before)."""


@dataclass(frozen=True)
class Published:
    """One event the broker acknowledged."""

    source: str
    row: int | None
    event_id: EventId
    event_type: str
    subject: str
    topic: TopicName
    partition: int
    offset: int


@dataclass
class PublishReport:
    """What a run published and rejected, and where the rejected input was kept."""

    published: list[Published] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    files: int = 0


def cloudevents_headers(ready: ReadyEvent, agency: str) -> list[tuple[str, bytes]]:
    """CloudEvents Kafka-binding headers: copies for tools, never trusted by the exchange."""
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", ready.event_id.encode()),
        ("ce_source", agency.encode()),
        ("ce_type", ready.event.event_type.encode()),
        ("ce_subject", ready.event.subject.encode()),
        ("content-type", b"application/avro"),
    ]


async def require_topic(settings: Settings, topic: TopicName) -> None:
    """Raise :class:`ConfigError` unless ``topic`` exists (topics are provisioned, not implied)."""
    async with kafka.admin_client(settings) as admin:
        existing = set(await admin.list_topics())
    if topic not in existing:
        raise ConfigError(
            f"ingress topic {topic!r} does not exist or is not visible to user "
            f"{settings.username!r}: the operators must provision it (and its ACLs) first"
        )


def publisher_producer(settings: Settings) -> AbstractAsyncContextManager[Producer]:
    """The publisher's producer: idempotent, ``acks=all``, batches of up to
    :data:`BATCH_BYTES` (a bulk publish queues a whole batch of rows before it awaits any)."""
    return aio.producer(settings, max_batch_size=BATCH_BYTES)


class Publisher:
    """Publishes files for one agency; use as ``async with Publisher.open(...) as p``."""

    def __init__(
        self,
        settings: Settings,
        sealer: EventSealer,
        producer: Producer,
        *,
        rejected_to_topic: bool = False,
        parallel: ParallelIntake | None = None,
    ) -> None:
        self._settings = settings
        self._sealer = sealer
        self._producer = producer
        self._rejected_to_topic = rejected_to_topic
        self._parallel = parallel
        self.topic: TopicName = settings.ingress_topic(sealer.agency)
        self.rejected_dir = settings.state_dir / "rejected"
        self.report = PublishReport()

    @property
    def agency(self) -> str:
        """The agency whose key signs and whose ingress topic is written."""
        return str(self._sealer.agency)

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        settings: Settings,
        sealer: EventSealer,
        *,
        rejected_to_topic: bool = False,
        producer_factory: ProducerFactory | None = None,
        parallel: ParallelIntake | None = None,
    ) -> AsyncIterator[Publisher]:
        """A publisher with its idempotent (acks=all) producer started; stopped on exit.

        With ``parallel`` (started by the caller), bulk CSVs are taken in by its worker
        processes, the publisher producing the batches they finished, in file order."""
        if producer_factory is None:
            await require_topic(settings, settings.ingress_topic(sealer.agency))
        factory = producer_factory or publisher_producer
        async with factory(settings) as producer:
            yield cls(
                settings, sealer, producer, rejected_to_topic=rejected_to_topic, parallel=parallel
            )

    async def publish_file(
        self,
        path: Path,
        fmt: str = "auto",
        *,
        source: str | None = None,
        progress: Progress | None = None,
    ) -> FileIntake:
        """Publish every valid document in the file at ``path`` (named ``source``, default
        the path). A bulk CSV is read as a stream of bounded rows, never whole
        (:mod:`adapters.intake.csvstream`); ``progress(bytes_read, bytes_total)`` follows it."""
        name = source or str(path)
        if fmt == CSV_FORMAT or (fmt == AUTO and path.suffix.lower() == ".csv"):
            return await self._publish_csv(path, name, progress)
        data = await asyncio.to_thread(path.read_bytes)
        return await self.publish_bytes(name, data, fmt)

    async def _taken_in(self, path: Path, source: str) -> AsyncIterator[tuple[Batch, FileIntake]]:
        """Each batch of the CSV at ``path`` with what taking it in yielded, in file order."""
        if self._parallel is not None:
            async for batch, intake in self._parallel.take_in_batches(source, batches(path)):
                yield batch, intake
            return
        for batch in batches(path):
            yield batch, take_in_batch(source, batch, self._sealer)

    async def _publish_csv(self, path: Path, source: str, progress: Progress | None) -> FileIntake:
        total = (await asyncio.to_thread(path.stat)).st_size
        ready: list[ReadyEvent] = []
        rejections: list[Rejection] = []
        async for batch, intake in self._taken_in(path, source):
            if batch.rejected:
                every = sorted((*intake.rejections, *batch.rejected), key=lambda r: r.row or 0)
                intake = replace(intake, rejections=tuple(every))
            # The batch is written back as CSV text only to be kept with its rejections.
            await self._produce(intake, batch.data if intake.rejections else b"")
            ready.extend(intake.ready)
            rejections.extend(intake.rejections)
            if progress is not None:
                progress(batch.position, total)
        self.report.files += 1
        return FileIntake(source, CSV_FORMAT, tuple(ready), tuple(rejections))

    async def publish_bytes(self, source: str, data: bytes, fmt: str = "auto") -> FileIntake:
        """Publish every valid document in ``data``; keep and report the rejected ones."""
        intake = take_in(source, data, fmt, self._sealer)
        await self._produce(intake, data)
        self.report.files += 1
        return intake

    async def _produce(self, intake: FileIntake, data: bytes) -> None:
        source = intake.source
        agency = self._sealer.agency
        pending = []
        for ready in intake.ready:
            future = await self._producer.send(
                Outgoing(
                    self.topic,
                    ready.envelope,
                    key=ready.event.subject.encode(),
                    headers=tuple(cloudevents_headers(ready, agency)),
                )
            )
            pending.append((ready, future))
        for ready, future in pending:
            meta = await future
            self.report.published.append(
                Published(
                    source, ready.row, ready.event_id, ready.event.event_type,
                    ready.event.subject, self.topic, meta.partition, meta.offset,
                )
            )  # fmt: skip
            _log.info(
                "published", event_id=ready.event_id, agency=agency, topic=self.topic,
                event_type=ready.event.event_type, row=ready.row,
            )  # fmt: skip
        if intake.rejections:
            await self._keep(intake, data)

    async def _keep(self, intake: FileIntake, data: bytes) -> None:
        agency = self._sealer.agency
        kept = await asyncio.to_thread(
            keep_rejected, self.rejected_dir, agency, intake.source, intake.fmt, data,
            intake.rejections,
        )  # fmt: skip
        self.report.kept.append(kept)
        self.report.rejected.extend(intake.rejections)
        for r in intake.rejections:
            # Ids and locations only: the reasons may quote a value, so they stay in the file.
            _log.warning(
                "rejected", agency=agency, file=intake.source, row=r.row,
                fields=[p.location for p in r.problems], kept=str(kept),
            )  # fmt: skip
        if self._rejected_to_topic:
            record = reason_record(agency, intake.source, intake.fmt, intake.rejections)
            record["raw_base64"] = base64.b64encode(data).decode()
            await self._producer.send_and_wait(
                Outgoing(
                    self._settings.rejected_topic,
                    json.dumps(record).encode(),
                    key=agency.encode(),
                )
            )
