"""Which reviewer's decision closed each hold, read from the audit trail (pure).

A held event's audit record names the event; the router audits each decision on it under
``review:<hold id>:<partner>`` (:func:`decision_id`), the hold id derived from the source
and event id. The decision's audit outcome (rule ``review:release`` or ``review:refuse``)
carries the reviewer, the time they decided and their reason in one sentence written by
:func:`statement` and read back by :func:`read_statement`. ``msht audit query --outcome
held`` shows, per held partner, the decision that closed the hold or that it is still open
(:func:`hold_states`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from broker.audit import AuditRecord, RecipientOutcome
from broker.review.held import hold_id_of

NOT_CARRIED_OUT = "; release not carried out: "
"""What the router appends to the statement when a release cannot be carried out."""

_STATEMENT = re.compile(
    r"^(?P<verdict>release|refuse)d by reviewer (?P<reviewer>\S+) at (?P<at>\S+) "
    r"\((?P<guard>[^()]*)\): (?P<rest>.*)$",
    re.DOTALL,
)


def decision_id(hold_id: str, partner: str) -> str:
    """The audit event id of the decision on ``hold_id`` for ``partner``."""
    return f"review:{hold_id}:{partner}"


def statement(verdict: str, reviewer: str, decided_at: datetime, guard: str, reason: str) -> str:
    """The sentence a decision's audit outcome gives as its reason (names who, when, why)."""
    return f"{verdict}d by reviewer {reviewer} at {decided_at.isoformat()} ({guard}): {reason}"


@dataclass(frozen=True)
class Statement:
    """A decision's statement read back: who decided what, when, on which guard and why."""

    verdict: str
    reviewer: str
    decided_at: str
    guard: str
    reason: str
    not_carried_out: str | None = None
    """Why the router did not carry a release out (``None`` when it did, or for a refusal)."""


def read_statement(text: str | None, *, carried_out: bool = True) -> Statement | None:
    """The :class:`Statement` in an audit outcome's reason; ``None`` if it is not one.

    For a release the router did not carry out (``carried_out=False``), the router's own
    explanation follows the reviewer's reason after :data:`NOT_CARRIED_OUT`; the reviewer's
    reason is what comes before the last such marker (the router's explanation never
    contains it).
    """
    found = _STATEMENT.match(text or "")
    if found is None:
        return None
    reason, why = found["rest"], None
    if not carried_out and NOT_CARRIED_OUT in reason:
        reason, _, why = reason.rpartition(NOT_CARRIED_OUT)
    return Statement(found["verdict"], found["reviewer"], found["at"], found["guard"], reason, why)


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


@dataclass(frozen=True)
class HoldState:
    """One partner an event was held for: still open, or the decision that closed it."""

    partner: str
    guard: str
    held_at: datetime
    decision: str | None = None
    """``release`` or ``refuse``; ``None`` while the hold is open."""
    outcome: str | None = None
    """What the router did with the decision: ``delivered`` or ``withheld``."""
    reviewer: str | None = None
    reason: str | None = None
    decided_at: str | None = None
    """When the reviewer signed the decision (ISO, as they stated it)."""
    audited_at: datetime | None = None
    """When the router carried it out (the decision's audit record)."""
    not_carried_out: str | None = None
    age: timedelta | None = None
    """How long an open hold has waited (``None`` once decided)."""

    @property
    def open(self) -> bool:
        """True while no decision closed the hold for this partner."""
        return self.decision is None

    def as_dict(self) -> dict[str, Any]:
        """The JSON form ``msht audit query --outcome held --json`` adds to each record."""
        if self.open:
            age = self.age or timedelta(0)
            return {
                "partner": self.partner,
                "guard": self.guard,
                "state": "open",
                "held_at": self.held_at.isoformat(),
                "age_hours": round(age.total_seconds() / 3600, 1),
            }
        return {
            "partner": self.partner,
            "guard": self.guard,
            "state": "decided",
            "decision": self.decision,
            "outcome": self.outcome,
            "reviewer": self.reviewer,
            "reason": self.reason,
            "decided_at": self.decided_at,
            "audited_at": self.audited_at.isoformat() if self.audited_at else None,
            "not_carried_out": self.not_carried_out,
        }

    def describe(self) -> str:
        """One line for the query table."""
        if self.open:
            hours = (self.age or timedelta(0)).total_seconds() / 3600
            return f"{self.partner}: OPEN, waiting {hours:.1f}h ({self.guard})"
        text = (
            f"{self.partner}: {self.decision}d by {self.reviewer} at {self.decided_at} "
            f"-> {self.outcome}: {self.reason}"
        )
        if self.not_carried_out:
            text += f" (not carried out: {self.not_carried_out})"
        return text


def hold_states(
    held: AuditRecord, records: Iterable[AuditRecord], now: datetime
) -> list[HoldState]:
    """For each partner ``held`` holds the event for, the first decision that closed it, or
    that it is open and how long it has waited (``now`` minus the held record's time).

    A later decision record on the same hold and partner (a repeat the router refused) is
    audited as a quarantine, not a decision, and does not count.
    """
    closed: dict[str, tuple[AuditRecord, RecipientOutcome]] = {}
    for record, outcome in closing_decisions(held, records):
        closed.setdefault(str(outcome.partner), (record, outcome))
    states = []
    for o in held.outcomes:
        if o.outcome != "held":
            continue
        partner = str(o.partner)
        if partner not in closed:
            states.append(HoldState(partner, o.rule, held.time, age=now - held.time))
            continue
        record, decided = closed[partner]
        carried = decided.outcome == "delivered" or decided.rule != "review:release"
        said = read_statement(decided.reason, carried_out=carried)
        states.append(
            HoldState(
                partner,
                o.rule,
                held.time,
                decision=decided.rule.removeprefix("review:"),
                outcome=str(decided.outcome),
                reviewer=said.reviewer if said else None,
                reason=said.reason if said else decided.reason,
                decided_at=said.decided_at if said else None,
                audited_at=record.time,
                not_carried_out=said.not_carried_out if said else None,
            )
        )
    return states
