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
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from adapters.exchange.seam import EventOpener, NoticeOpener
from adapters.native.provenance import attach
from adapters.protocol import DeliveredEvent
from adapters.registry import extension_for, renderer_for
from adapters.rendering.notice import render_notice
from broker.crypto.private_files import write_file
from broker.errors import (
    CodecError,
    InputValidationError,
    MshtError,
    ReviewError,
    SealingError,
    VerificationError,
)
from broker.kafka import aio
from broker.kafka.protocols import Consumer, PositionedConsumer
from broker.logging import get_logger
from broker.observe.metrics import Metrics
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
    verified: str | None = None
    """Which signatures vouch for it: ``originator and router`` (the originating agency's own
    signature over every disclosed value, and the router's over the view) or ``router only``
    (a view without commitments; :mod:`broker.crypto.view_check`)."""


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
    reloads: int = 0
    """Trust stores installed while running (see :class:`TrustReload`)."""
    reload_refusals: list[str] = field(default_factory=list)
    """Why each refused trust store was refused (the one in force stayed)."""
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


def _fingerprint(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


@dataclass
class TrustReload:
    """Re-open the subscriber's opener when the trust store's bytes change, or on ``wake``.

    ``reopen`` builds an opener from the file as it is now (checked against the operator
    key when one is configured); if it raises, the trust store is refused and the opener in
    force stays. Checked between batches only.
    """

    path: Path
    reopen: Callable[[], EventOpener]
    wake: asyncio.Event | None = None
    _seen: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._seen = _fingerprint(self.path)

    def poll(self) -> EventOpener | str | None:
        """A new opener, the reason a changed trust store was refused, or ``None``."""
        forced = self.wake is not None and self.wake.is_set()
        if self.wake is not None:
            self.wake.clear()
        seen = _fingerprint(self.path)
        if seen == self._seen and not forced:
            return None
        self._seen = seen
        try:
            return self.reopen()
        except MshtError as exc:
            return f"{type(exc).__name__}: {exc}"


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
        reload: TrustReload | None = None,
        evidence: Path | None = None,
    ) -> None:
        self._reload = reload
        # Verification records and the signed views themselves, for a case file (msht verify).
        self._evidence = evidence / partner if evidence is not None else None
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
        self.metrics: Metrics | None = None
        """Where what this subscriber does is counted (``msht subscribe`` serves it)."""

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
        reload: TrustReload | None = None,
        evidence: Path | None = None,
    ) -> AsyncIterator[Subscriber]:
        """A subscriber whose read_committed consumer is started; stopped on exit."""
        topic = settings.delivery_topic(partner)
        group = group_id or partner  # provisioning grants each partner the group named after it
        factory = consumer_factory or (lambda s, t, g: aio.consumer(s, t, group_id=g))
        async with factory(settings, topic, group) as consumer:
            yield cls(
                settings, partner, opener, consumer,
                fmt=fmt, family=family, outbox=outbox, stdout=stdout, reload=reload,
                evidence=evidence,
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
            data, sidecar = attach(event, extension_for(fmt), data)
        except (VerificationError, CodecError, SealingError, InputValidationError) as exc:
            self._fail(topic, partition, offset, f"{type(exc).__name__}: {exc}", value)
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
            if sidecar is not None:
                _write_atomic(path.with_name(f"{event.event_id}.provenance.csv"), sidecar)
        if self._stdout is not None:
            self._stdout.write(data.decode("utf-8"))
            if not data.endswith(b"\n"):
                self._stdout.write("\n")
            self._stdout.flush()
        verified = (event.verification or {}).get("result")
        if self._evidence is not None and event.verification is not None:
            self._keep_evidence(event, value, path)
        self.report.rendered.append(
            Rendered(event.event_id, event.event_type, fmt, path, data, verified)
        )
        _log.info(
            "rendered", event_id=event.event_id, agency=event.source, partner=self._partner,
            event_type=event.event_type, format=fmt, verified=verified,
        )  # fmt: skip

    def _keep_evidence(self, event: DeliveredEvent, value: bytes, document: Path | None) -> None:
        """``<event_id>.verification.json`` (originator, key id, root, router signature,
        result) and ``<event_id>.view`` (the signed view as delivered, for ``msht verify``)."""
        assert self._evidence is not None
        record = {**(event.verification or {}), "document": str(document) if document else None}
        _write_atomic(
            self._evidence / f"{event.event_id}.verification.json",
            json.dumps(record, indent=2).encode() + b"\n",
        )
        _write_atomic(self._evidence / f"{event.event_id}.view", value)

    def _fail(
        self, topic: str, partition: int, offset: int, reason: str, value: bytes | None = None
    ) -> None:
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
            if value is not None:
                # Kept as delivered, so the refusal can be examined (msht verify) later.
                _write_atomic(
                    self._outbox / "_failed" / f"{topic}-{partition}-{offset}.view", value
                )

    def _observe_consumer(self) -> None:
        """Readiness (connected, a partition assigned) and lag per partition."""
        if self.metrics is None:
            return
        health = self.metrics.health
        health.connected = health.restored = True  # nothing to restore: offsets are Kafka's
        if not isinstance(self._consumer, PositionedConsumer):
            health.assigned = True
            return
        assigned = self._consumer.assignment()
        health.assigned = bool(assigned)
        for tp in assigned:
            end, position = self._consumer.end_offset(tp), self._consumer.position(tp)
            if end is not None and position is not None:
                self.metrics.lag.labels(tp.topic, str(tp.partition)).set(max(end - position, 0))

    async def run(self, max_events: int | None = None, stop: asyncio.Event | None = None) -> None:
        """Consume until ``max_events`` records were handled or ``stop`` is set."""
        while not (stop is not None and stop.is_set()):
            if max_events is not None and self.report.handled >= max_events:
                return
            self._reload_trust()
            batches = await self._consumer.getmany(timeout_ms=500, max_records=100)
            self._observe_consumer()
            if not batches:
                continue
            for tp, records in batches.items():
                for record in records:
                    if max_events is not None and self.report.handled >= max_events:
                        break
                    failed = len(self.report.failed)
                    self.handle(record.value, tp.topic, tp.partition, record.offset)
                    await self._consumer.commit({tp: record.offset + 1})
                    if self.metrics is not None:
                        ok = len(self.report.failed) == failed
                        self.metrics.inputs.labels("rendered" if ok else "failed").inc()
                        self.metrics.observe_end_to_end(record.timestamp_ms)
                        self.metrics.committed()

    def _reload_trust(self) -> None:
        if self._reload is None:
            return
        result = self._reload.poll()
        if result is None:
            return
        if isinstance(result, str):
            self.report.reload_refusals.append(result)
            _log.error(
                "trust store reload refused; the one in force stays", partner=self._partner,
                path=str(self._reload.path), reason=result,
                refused=len(self.report.reload_refusals),
            )  # fmt: skip
            return
        self._opener = result
        self.report.reloads += 1
        _log.info("trust store reloaded", partner=self._partner, path=str(self._reload.path))
