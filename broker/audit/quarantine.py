"""What the quarantine topic holds, as ``msht quarantine`` lists, shows and replays it.

Pure: the records are read by :func:`broker.audit.reader.read_audit_topic` (any topic) and
turned into :class:`QuarantineEntry` here. An entry holds identifiers only — where the input
came from, why it was quarantined, its event id, source agency and subject when its envelope
header still decodes — never the payload, sealed or not (docs/OPERATIONS.md, "Quarantine").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from broker.errors import MshtError, QuarantineError
from broker.events.envelope import decode_envelope

REPLAY_HEADER = "msht-replay-of"
"""The header a replayed input carries: ``<quarantine topic>:<partition>:<offset>``."""


@dataclass(frozen=True)
class QuarantineEntry:
    """One quarantine record: its position, why, and where the input came from."""

    topic: str
    partition: int
    offset: int
    time: datetime
    reason: str
    error: str
    source_topic: str | None
    source_partition: int | None
    source_offset: int | None
    input_sha256: str | None
    input_bytes: int | None
    truncated: bool
    replay_of: str | None
    event_id: str | None
    source: str | None
    subject: str | None
    event_type: str | None
    key: bytes | None
    value: bytes

    @property
    def id(self) -> str:
        """``<partition>:<offset>`` on the quarantine topic: what ``show`` and ``replay`` take."""
        return f"{self.partition}:{self.offset}"

    @property
    def link(self) -> str:
        """``<topic>:<partition>:<offset>``: the value of a replay's ``msht-replay-of`` header."""
        return f"{self.topic}:{self.partition}:{self.offset}"

    def summary(self) -> dict[str, Any]:
        """The entry as ``-o json`` prints it: identifiers, reason and times, no content."""
        return {
            "id": self.id,
            "time": self.time.isoformat().replace("+00:00", "Z"),
            "reason": self.reason,
            "error": self.error,
            "event_id": self.event_id,
            "source": self.source,
            "subject": self.subject,
            "event_type": self.event_type,
            "source_topic": self.source_topic,
            "source_partition": self.source_partition,
            "source_offset": self.source_offset,
            "input_sha256": self.input_sha256,
            "input_bytes": self.input_bytes,
            "truncated": self.truncated,
            "replayable": self.replayable,
            "replay_of": self.replay_of,
        }

    @property
    def replayable(self) -> bool:
        """The whole input was kept and it names the ingress topic it came from."""
        return not self.truncated and self.source_topic is not None


def _text(headers: Mapping[str, bytes], name: str) -> str | None:
    value = headers.get(name)
    return value.decode("utf-8", "replace") if value is not None else None


def _int(headers: Mapping[str, bytes], name: str) -> int | None:
    text = _text(headers, name)
    return int(text) if text is not None and text.isdigit() else None


def entry_of(
    topic: str,
    partition: int,
    offset: int,
    *,
    key: bytes | None,
    value: bytes,
    headers: Sequence[tuple[str, bytes]],
    timestamp_ms: int,
) -> QuarantineEntry:
    """The entry one quarantine record describes (its headers as the router writes them)."""
    named = dict(headers)
    event_id = source = subject = event_type = None
    try:
        header = decode_envelope(value).header
    except MshtError:
        pass  # undecodable input: the headers and the digest are all there is
    else:
        event_id, source, subject = str(header.event_id), str(header.source), str(header.subject)
        event_type = header.event_type
    return QuarantineEntry(
        topic=topic,
        partition=partition,
        offset=offset,
        time=datetime.fromtimestamp(timestamp_ms / 1000, UTC),
        reason=_text(named, "msht-reason") or "unknown",
        error=_text(named, "msht-error") or "",
        source_topic=_text(named, "msht-source-topic"),
        source_partition=_int(named, "msht-partition"),
        source_offset=_int(named, "msht-offset"),
        input_sha256=_text(named, "msht-input-sha256"),
        input_bytes=_int(named, "msht-input-bytes"),
        truncated="msht-truncated" in named,
        replay_of=_text(named, REPLAY_HEADER),
        event_id=event_id,
        source=source,
        subject=subject,
        event_type=event_type,
        key=key,
        value=value,
    )


def parse_id(text: str) -> tuple[int, int]:
    """``(partition, offset)`` from an id ``P:O``; :class:`QuarantineError` otherwise."""
    partition, sep, offset = text.partition(":")
    if not sep or not partition.isdigit() or not offset.isdigit():
        raise QuarantineError(
            f"quarantine id {text!r}: expected <partition>:<offset> as 'msht quarantine list' shows"
        )
    return int(partition), int(offset)


def select(entries: Iterable[QuarantineEntry], ids: Sequence[str]) -> list[QuarantineEntry]:
    """The entries named by ``ids``, in that order; :class:`QuarantineError` names every id
    that is not on the topic."""
    wanted = [parse_id(i) for i in ids]
    by_position = {(e.partition, e.offset): e for e in entries}
    missing = [ids[n] for n, pos in enumerate(wanted) if pos not in by_position]
    if missing:
        raise QuarantineError(
            f"not on the quarantine topic (or past its retention): {', '.join(missing)}"
        )
    return [by_position[pos] for pos in wanted]


def check_replayable(entry: QuarantineEntry) -> None:
    """:class:`QuarantineError` unless ``entry``'s original bytes can go back to ingress."""
    if entry.truncated:
        raise QuarantineError(
            f"quarantine {entry.id}: only the first bytes of the input were kept (it exceeded "
            "the record bound); ask the agency to publish it again"
        )
    if entry.source_topic is None:
        raise QuarantineError(f"quarantine {entry.id}: the record names no source topic")
