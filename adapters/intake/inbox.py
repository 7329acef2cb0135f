"""A watched inbox: ``msht publish --watch DIR`` for an agency's case system.

The sender writes each document into ``DIR/inbox/`` atomically (write a dotfile or a
``.part``/``.tmp`` name, then rename it); names starting with ``.`` or ending in a partial
suffix are never touched. For each document, oldest first:

1. publish every valid document in it (:class:`~adapters.intake.publisher.Publisher`: acks=all,
   idempotent producer, deterministic event ids from :mod:`adapters.intake.identity`);
2. write the receipt (``<name>.receipt.json``, atomically) into ``processed/`` when anything
   was published — listing each event id with its topic, partition and offset, and every
   rejected row with every field and reason — or into ``rejected/`` when nothing was;
3. move the document beside its receipt.

At least once, never lost: the document leaves ``inbox/`` only after the broker acknowledged
its events and its receipt is on disk. A watcher killed at any point and started again
publishes the document again with the same event ids (the router records the repeats as
duplicates and delivers nothing twice) and rewrites the receipt. A broker that does not
answer leaves the document in ``inbox/`` to be tried again.

Metrics: :class:`InboxObserver` is the hook (a no-op by default) the metrics endpoint of
issue 18 part 1 plugs into.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from adapters.intake.publisher import Publisher, PublishReport
from broker.crypto.private_files import write_file
from broker.errors import MshtError
from broker.logging import get_logger
from broker.observe.systemd import notify

_log = get_logger(__name__)

PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", "~")
"""Names a sender uses while it is still writing; the watcher waits for the rename."""
RECEIPT_SUFFIX = ".receipt.json"
INBOX, PROCESSED, REJECTED = "inbox", "processed", "rejected"


class InboxObserver(Protocol):
    """What the watcher reports as it goes (metrics plug in here)."""

    def processed(self, receipt: dict[str, Any]) -> None:
        """A document was published (some rows may have been rejected)."""

    def rejected(self, receipt: dict[str, Any]) -> None:
        """A document yielded nothing to publish."""

    def failed(self, name: str, error: MshtError) -> None:
        """A document could not be published now (it stays in the inbox)."""


class NoObserver:
    """The default :class:`InboxObserver`: reports nothing."""

    def processed(self, receipt: dict[str, Any]) -> None:
        """Nothing."""

    def rejected(self, receipt: dict[str, Any]) -> None:
        """Nothing."""

    def failed(self, name: str, error: MshtError) -> None:
        """Nothing."""


def waiting(inbox: Path) -> list[Path]:
    """Complete documents in ``inbox``, oldest first (then by name)."""
    found = []
    for path in inbox.iterdir():
        name = path.name
        if name.startswith(".") or name.endswith(PARTIAL_SUFFIXES) or not path.is_file():
            continue
        found.append(path)
    return sorted(found, key=lambda p: (p.stat().st_mtime_ns, p.name))


@dataclass
class InboxWatcher:
    """Watches ``root/inbox`` and publishes with ``publisher`` until ``stop`` is set."""

    root: Path
    publisher: Publisher
    fmt: str = "auto"
    poll_seconds: float = 1.0
    retry_seconds: float = 5.0
    observer: InboxObserver = field(default_factory=NoObserver)

    def __post_init__(self) -> None:
        for name in (INBOX, PROCESSED, REJECTED):
            (self.root / name).mkdir(parents=True, exist_ok=True, mode=0o700)

    async def run(self, stop: asyncio.Event) -> None:
        """Process documents as they arrive until ``stop`` is set."""
        _log.info("inbox watched", inbox=str(self.root / INBOX), agency=self.publisher.agency)
        # The publisher's producer is connected by now: a Type=notify unit may count us up.
        notify("READY=1")
        while not stop.is_set():
            done_any = await self.sweep(stop)
            if not done_any:
                await _wait(stop, self.poll_seconds)

    async def sweep(self, stop: asyncio.Event | None = None) -> bool:
        """Process every document waiting now; True when at least one was filed."""
        filed = False
        for path in await asyncio.to_thread(waiting, self.root / INBOX):
            if stop is not None and stop.is_set():
                break
            try:
                await self.take(path)
            except MshtError as exc:
                # The broker, a key or a topic is at fault, not the document: keep it.
                _log.error("inbox document not published; kept for a retry", file=path.name,
                           error=str(exc))  # fmt: skip
                self.observer.failed(path.name, exc)
                if stop is not None:
                    await _wait(stop, self.retry_seconds)
                return filed
            filed = True
        return filed

    async def take(self, path: Path) -> dict[str, Any]:
        """Publish one document, write its receipt, move it beside the receipt."""
        digest, size = await asyncio.to_thread(_digest, path)
        # A fresh report per document: a long-running watcher must not accumulate them.
        self.publisher.report = PublishReport()
        intake = await self.publisher.publish_file(path, self.fmt, source=path.name)
        published = self.publisher.report.published
        receipt: dict[str, Any] = {
            "file": path.name,
            "sha256": digest,
            "bytes": size,
            "agency": self.publisher.agency,
            "format": intake.fmt,
            "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "published": [
                {
                    "event_id": p.event_id,
                    "row": p.row,
                    "event_type": p.event_type,
                    "topic": p.topic,
                    "partition": p.partition,
                    "offset": p.offset,
                }
                for p in published
            ],
            "rejected": [
                {
                    "row": r.row,
                    "message": r.message,
                    "problems": [{"field": p.location, "reason": p.reason} for p in r.problems],
                }
                for r in intake.rejections
            ],
        }
        folder = PROCESSED if published or not intake.rejections else REJECTED
        await asyncio.to_thread(_file, path, self.root / folder, receipt)
        if folder == PROCESSED:
            self.observer.processed(receipt)
        else:
            self.observer.rejected(receipt)
        _log.info("inbox document filed", file=path.name, folder=folder,
                  published=len(published), rejected=len(intake.rejections))  # fmt: skip
        return receipt


def _digest(path: Path) -> tuple[str, int]:
    # Read in blocks: a bulk CSV is never held whole.
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _file(path: Path, folder: Path, receipt: dict[str, Any]) -> None:
    # Receipt first, then the move: a crash between them leaves the document in the inbox
    # (published again with the same ids, the receipt rewritten), never a document filed
    # without its receipt.
    target = folder / path.name
    text = json.dumps(receipt, indent=2, ensure_ascii=False) + "\n"
    write_file(target.with_name(target.name + RECEIPT_SUFFIX), text.encode("utf-8"))
    path.replace(target)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


def receipts(folder: Path) -> Sequence[dict[str, Any]]:
    """Every receipt in ``folder`` (for tests and tools)."""
    return [
        json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob(f"*{RECEIPT_SUFFIX}"))
    ]
