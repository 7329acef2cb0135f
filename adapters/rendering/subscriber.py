"""Receive a partner's deliveries: consume, verify every signature, render into native files.

The subscriber reads the partner's delivery topic ``read_committed`` (so aborted router
transactions are never seen), opens each record with an :class:`EventOpener` (signatures
checked against the trust store, payload decoded) and renders it with the adapter for its
event type: files in ``<outbox>/<partner>/`` named by event id, and/or stdout.

A record that fails verification, decoding or rendering is reported (logged with ids only,
and a reason file in ``<outbox>/<partner>/_failed/``) and the loop goes on. Offsets are
committed after the batch is written; a file is written under its event id, so a record
read twice after a crash rewrites the same file rather than adding a second.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from adapters.exchange.seam import EventOpener, NoticeOpener
from adapters.protocol import DeliveredEvent
from adapters.registry import extension_for, renderer_for
from adapters.rendering.notice import render_notice
from broker.crypto.private_files import write_file
from broker.errors import (
    CodecError,
    InputValidationError,
    ReviewError,
    SealingError,
    VerificationError,
)
from broker.kafka import aio
from broker.kafka.protocols import Consumer
from broker.logging import get_logger
from broker.review.notice import Notice, is_notice
from broker.settings import Settings
from broker.types import PartnerId, TopicName

_log = get_logger(__name__)

"""File extension per format (``json`` otherwise)."""

ConsumerFactory = Callable[[Settings, str, str], AbstractAsyncContextManager[Consumer]]


@dataclass(frozen=True)
class Rendered:
    """One delivered event written in native form."""

    event_id: str
    event_type: str
    fmt: str
    path: Path | None
    data: bytes


@dataclass(frozen=True)
class Failed:
    """A delivery that could not be verified, decoded or rendered."""

    topic: str
    partition: int
    offset: int
    reason: str


@dataclass
class SubscribeReport:
    """What a run rendered and what it could not."""

    rendered: list[Rendered] = field(default_factory=list)
    failed: list[Failed] = field(default_factory=list)
    notices: list[tuple[Notice, Path | None]] = field(default_factory=list)
    """Status notices about the partner's own held events, and where each was written."""

    @property
    def handled(self) -> int:
        """Deliveries taken off the topic, rendered or not (notices are counted apart)."""
        return len(self.rendered) + len(self.failed)


def _differs(path: Path, data: bytes) -> bool:
    """Whether ``path`` holds a document other than ``data`` (a re-read of the same record
    renders the same bytes and may be written again)."""
    try:
        return path.read_bytes() != data
    except FileNotFoundError:
        return False


def _write_atomic(path: Path, data: bytes) -> None:
    # The outbox holds rendered personal data: its folder and files are the owner's only.
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_file(path, data)


def render_delivery(
    event: DeliveredEvent, fmt: str | None, family: str | None = None
) -> tuple[str, bytes]:
    """The format and native bytes for ``event`` (``fmt``, then ``family``, preferred)."""
    choice = renderer_for(event.event_type, fmt, family)
    if choice is None:
        raise InputValidationError(f"no adapter renders {event.event_type}")
    adapter, actual = choice
    return actual, adapter.render(event, actual)


class Subscriber:
    """Renders one partner's deliveries; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        partner: PartnerId,
        opener: EventOpener,
        consumer: Consumer,
        *,
        fmt: str | None = None,
        family: str | None = None,
        outbox: Path | None = None,
        stdout: TextIO | None = None,
    ) -> None:
        self._partner = partner
        self._opener = opener
        self._consumer = consumer
        self._fmt = fmt
        self._family = family
        self._outbox = outbox / partner if outbox is not None else None
        # Beside the partner's folder, not in it: that folder holds only delivered documents.
        self._notices = outbox / "_notices" / partner if outbox is not None else None
        self._stdout = stdout
        self.topic: TopicName = settings.delivery_topic(partner)
        self.report = SubscribeReport()

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        settings: Settings,
        partner: PartnerId,
        opener: EventOpener,
        *,
        fmt: str | None = None,
        family: str | None = None,
        outbox: Path | None = None,
        stdout: TextIO | None = None,
        group_id: str | None = None,
        consumer_factory: ConsumerFactory | None = None,
    ) -> AsyncIterator[Subscriber]:
        """A subscriber whose read_committed consumer is started; stopped on exit."""
        topic = settings.delivery_topic(partner)
        group = group_id or partner  # provisioning grants each partner the group named after it
        factory = consumer_factory or (lambda s, t, g: aio.consumer(s, t, group_id=g))
        async with factory(settings, topic, group) as consumer:
            yield cls(
                settings, partner, opener, consumer,
                fmt=fmt, family=family, outbox=outbox, stdout=stdout,
            )  # fmt: skip

    def _notice(self, value: bytes, topic: str, partition: int, offset: int) -> None:
        """A status notice: verified against the trust store, rendered beside the outbox."""
        if not isinstance(self._opener, NoticeOpener):
            self._fail(topic, partition, offset, "a status notice, and no way to verify it")
            return
        try:
            notice = self._opener.open_notice(value)
            ext, data = render_notice(notice, self._fmt)
        except ReviewError as exc:
            self._fail(topic, partition, offset, f"ReviewError: {exc}")
            return
        path = None
        if self._notices is not None:
            path = self._notices / f"{notice.notice_id}.{ext}"
            _write_atomic(path, data)
        self.report.notices.append((notice, path))
        _log.info(
            "status notice", event_id=notice.event_id, hold=notice.hold_id,
            status=notice.status.value, partner=self._partner,
        )  # fmt: skip

    def handle(self, value: bytes, topic: str, partition: int, offset: int) -> None:
        """Verify, decode and render one record; failures are recorded, never raised."""
        if is_notice(value):
            self._notice(value, topic, partition, offset)
            return
        try:
            event = self._opener.open(value)
            fmt, data = render_delivery(event, self._fmt, self._family)
        except (VerificationError, CodecError, SealingError, InputValidationError) as exc:
            self._fail(topic, partition, offset, f"{type(exc).__name__}: {exc}")
            return
        except Exception as exc:
            self._fail(topic, partition, offset, f"unexpected {type(exc).__name__}: {exc}")
            return
        path = None
        if self._outbox is not None:
            path = self._outbox / f"{event.event_id}.{extension_for(fmt)}"
            if _differs(path, data):
                # An event id names one document: a second, different one never replaces
                # what a caseworker may already have read. Keep it aside and say so.
                aside = (
                    self._outbox / "_conflicts" / f"{topic}-{partition}-{offset}.{path.suffix[1:]}"
                )
                _write_atomic(aside, data)
                self._fail(
                    topic, partition, offset,
                    f"event_id {event.event_id}: a different document with this id is already "
                    f"in the outbox; this one was kept in {aside.parent.name}/",
                )  # fmt: skip
                return
            _write_atomic(path, data)
        if self._stdout is not None:
            self._stdout.write(data.decode("utf-8"))
            if not data.endswith(b"\n"):
                self._stdout.write("\n")
            self._stdout.flush()
        self.report.rendered.append(Rendered(event.event_id, event.event_type, fmt, path, data))
        _log.info(
            "rendered", event_id=event.event_id, agency=event.source, partner=self._partner,
            event_type=event.event_type, format=fmt,
        )  # fmt: skip

    def _fail(self, topic: str, partition: int, offset: int, reason: str) -> None:
        failed = Failed(topic, partition, offset, reason)
        self.report.failed.append(failed)
        # The reason names a field or key id, never payload content.
        _log.warning(
            "delivery_failed", partner=self._partner, topic=topic, partition=partition,
            offset=offset, reason=reason,
        )  # fmt: skip
        if self._outbox is not None:
            record = {"topic": topic, "partition": partition, "offset": offset, "reason": reason}
            _write_atomic(
                self._outbox / "_failed" / f"{topic}-{partition}-{offset}.json",
                json.dumps(record, indent=2).encode() + b"\n",
            )

    async def run(self, max_events: int | None = None, stop: asyncio.Event | None = None) -> None:
        """Consume until ``max_events`` records were handled or ``stop`` is set."""
        while not (stop is not None and stop.is_set()):
            if max_events is not None and self.report.handled >= max_events:
                return
            batches = await self._consumer.getmany(timeout_ms=500, max_records=100)
            if not batches:
                continue
            for tp, records in batches.items():
                for record in records:
                    if max_events is not None and self.report.handled >= max_events:
                        break
                    self.handle(record.value, tp.topic, tp.partition, record.offset)
                    await self._consumer.commit({tp: record.offset + 1})
