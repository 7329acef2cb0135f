"""Building a chain: its head, resuming it after a restart, appending records."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from broker.audit.record import (
    GENESIS_DIGEST,
    KINDS,
    AuditRecord,
    RecipientOutcome,
    RecordKind,
    RecordSigner,
    body_digest,
    parse_record,
    sealed_record,
)
from broker.errors import AuditChainError
from broker.types import AgencyId, EventId, Subject

# --- building a chain --------------------------------------------------------------------


@dataclass(frozen=True)
class ChainHead:
    """Where a chain stands: the next ``seq`` to write and the last record's digest."""

    chain: str
    next_seq: int
    digest: str

    @classmethod
    def genesis(cls, chain: str) -> ChainHead:
        """The head of a chain that has no records yet."""
        return cls(chain=chain, next_seq=0, digest=GENESIS_DIGEST)


def resume_head(chain: str, records: Iterable[bytes]) -> ChainHead:
    """The head of ``chain`` after the committed ``records`` (an audit topic's values, in order).

    A router calls this when it is assigned an input partition, after its transactional
    producer has fenced any previous owner, reading the audit topic ``read_committed`` up to
    the high watermark taken after the fence (not merely to the last stable offset, which
    another chain's open transaction can hold back). Records of other chains and records
    that do not parse are passed over here; ``msht audit verify`` reports them.
    """
    head = ChainHead.genesis(chain)
    for data in records:
        try:
            record = parse_record(data)
        except AuditChainError:
            continue
        if record.chain == chain:
            head = ChainHead(chain=chain, next_seq=record.seq + 1, digest=record.digest)
    return head


def decided_event_ids(chain: str, records: Iterable[bytes]) -> set[EventId]:
    """Event ids ``chain`` has a ``decision`` record for: the router's de-duplication memory.

    A re-published event has the same subject, hence the same input partition and chain, so
    after a restart the router rebuilds its "already decided" set from its own chain.
    Quarantined inputs are not included: a corrected re-publication must still be decided.
    """
    decided: set[EventId] = set()
    for data in records:
        try:
            record = parse_record(data)
        except AuditChainError:
            continue
        if record.chain == chain and record.kind == "decision":
            decided.add(record.event_id)
    return decided


class AuditChain:
    """Appends records to one chain, each linked to the digest of the one before.

    Stateful: it remembers the head. The router takes :attr:`head` before a transaction and
    calls :meth:`reset` with it when the transaction aborts, so the records it never
    committed leave no trace in the chain.
    """

    def __init__(self, head: ChainHead, *, router: str, signer: RecordSigner | None = None):
        if not router:
            raise AuditChainError("router: the router instance id must not be empty")
        self._head = head
        self._router = router
        self._signer = signer

    @property
    def head(self) -> ChainHead:
        """The current head (advanced by every :meth:`append`)."""
        return self._head

    def reset(self, head: ChainHead) -> None:
        """Go back to ``head`` (taken earlier from :attr:`head`), after an aborted transaction."""
        if head.chain != self._head.chain:
            raise AuditChainError(f"chain: cannot reset chain {self._head.chain} to {head.chain}")
        self._head = head

    def append(
        self,
        *,
        time: datetime,
        event_id: EventId,
        source: AgencyId,
        subject: Subject,
        outcomes: Iterable[RecipientOutcome],
        policy_version: str,
        input_offset: int | None = None,
        kind: RecordKind = "decision",
        content_digest: str | None = None,
        reason: str | None = None,
        replay_of: str | None = None,
        trust_version: str | None = None,
    ) -> AuditRecord:
        """Build the next record of the chain and advance the head to it."""
        if kind not in KINDS:
            raise AuditChainError(f"kind: {kind!r} is not one of {sorted(KINDS)}")
        if not event_id:
            raise AuditChainError("event_id: must not be empty")
        if input_offset is not None and input_offset < 0:
            raise AuditChainError("input_offset: must not be negative")
        outcomes = tuple(outcomes)
        partners = [outcome.partner for outcome in outcomes]
        repeated = sorted({p for p in partners if partners.count(p) > 1})
        if repeated:
            raise AuditChainError(f"outcomes: partner {', '.join(repeated)} listed more than once")
        draft = AuditRecord(
            chain=self._head.chain,
            seq=self._head.next_seq,
            time=time,
            kind=kind,
            event_id=event_id,
            source=source,
            subject=subject,
            input_offset=input_offset,
            outcomes=outcomes,
            policy_version=policy_version,
            router=self._router,
            prev_digest=self._head.digest,
            digest=GENESIS_DIGEST,
            signer=self._signer.key_id if self._signer else None,
            content_digest=content_digest,
            reason=reason,
            replay_of=replay_of,
            trust_version=trust_version,
        )
        body = draft.body()
        digest = body_digest(body)
        signature = self._signer.sign(digest) if self._signer else None
        record = sealed_record(draft, body, digest, signature)
        self._head = ChainHead(chain=record.chain, next_seq=record.seq + 1, digest=digest)
        return record
