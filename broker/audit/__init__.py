"""The tamper-evident audit trail: one record per routing decision, hash-chained.

Pure logic only: building, serialising, verifying and filtering records. The router produces
the bytes of :meth:`AuditRecord.to_bytes` to the audit topic in the same Kafka transaction as
the deliveries; ``msht audit verify`` and ``msht audit query`` feed the topic's values back in.

Format (see docs/AUDIT.md)
    A record is a JSON object in canonical form: UTF-8, keys sorted, no insignificant
    whitespace, only strings, integers, booleans, null, arrays and objects (no floats). Its
    ``digest`` is SHA-256 over the canonical bytes of the record *without* its ``digest`` and
    ``signature`` members; ``prev_digest`` is the ``digest`` of the record before it in the
    same chain, and 32 zero bytes (hex) for the first record of a chain.

Chains
    There is one chain per input topic-partition (``chain`` = ``"<topic>/<partition>"``).
    Exactly one router at a time owns an input partition and its transactional id, and Kafka
    fences any older producer with that id, so each chain has a single writer even while
    routers rebalance. ``seq`` counts the records of a chain from 0, so a verifier can say
    which record is missing, not only that a link is broken.

Modules: :mod:`broker.audit.record` (the model and its bytes), :mod:`broker.audit.chain`
(appending and resuming), :mod:`broker.audit.verify` (checking and querying). Import from
``broker.audit``.
"""

from broker.audit.chain import AuditChain, ChainHead, decided_event_ids, resume_head
from broker.audit.record import (
    FORMAT_VERSION,
    GENESIS_DIGEST,
    AuditRecord,
    RecipientOutcome,
    RecordKind,
    RecordSigner,
    body_digest,
    canonical_json,
    chain_id,
    format_time,
    parse_record,
    parse_time,
)
from broker.audit.verify import ChainBreak, ChainReport, ChainTally, query, verify_chain
from broker.types import Outcome

__all__ = [
    "FORMAT_VERSION",
    "GENESIS_DIGEST",
    "AuditChain",
    "AuditRecord",
    "ChainBreak",
    "ChainHead",
    "ChainReport",
    "ChainTally",
    "Outcome",
    "RecipientOutcome",
    "RecordKind",
    "RecordSigner",
    "body_digest",
    "canonical_json",
    "chain_id",
    "decided_event_ids",
    "format_time",
    "parse_record",
    "parse_time",
    "query",
    "resume_head",
    "verify_chain",
]
