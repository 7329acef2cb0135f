"""Which reviewer's decision closed each hold, read from the audit trail (pure).

A held event's audit record names the event; the router audits each decision on it under
``review:<hold id>:<partner>`` (:func:`decision_id`), the hold id derived from the source
and event id. ``msht audit query --outcome held`` shows them side by side.
"""

from __future__ import annotations

from collections.abc import Iterable

from broker.audit import AuditRecord, RecipientOutcome
from broker.review.held import hold_id_of


def decision_id(hold_id: str, partner: str) -> str:
    """The audit event id of the decision on ``hold_id`` for ``partner``."""
    return f"review:{hold_id}:{partner}"


def closing_decisions(
    held: AuditRecord, records: Iterable[AuditRecord]
) -> list[tuple[AuditRecord, RecipientOutcome]]:
    """The decision records (kind ``decision``) that closed ``held``'s holds, in trail order."""
    prefix = decision_id(hold_id_of(held.source, held.event_id), "")
    return [
        (r, o)
        for r in records
        if r.kind == "decision" and r.event_id.startswith(prefix)
        for o in r.outcomes
    ]
