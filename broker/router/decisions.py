"""The decisions topic's pipeline: carry out each reviewer's decision once, or quarantine it.

A :class:`DecisionProcessor` is the processor of one decisions-topic partition. It shares
everything with :class:`~broker.router.processor.RouteProcessor` (audit chain, the
de-duplication window restored from it, quarantine, rollback, output bounds) and differs in
what one input becomes:

* a decision that is malformed, not signed by a reviewer's valid key, by a reviewer not
  allowed to decide that hold, or for a hold this router did not write: quarantined with
  reason ``malformed-decision``, ``unverified-decision``, ``reviewer-not-allowed`` or
  ``unknown-hold``, audited, nothing delivered;
* a second decision on a hold already decided for that partner: quarantined as
  ``already-decided`` (the de-duplication window holds ``review:<hold>:<partner>``);
* a refusal: an audit record (outcome ``withhold``, rule ``review:refuse``);
* a release: the original event (sealed to the router in the held record) is admitted
  again as it arrived, the policy decides it again, and it is delivered only if the one
  thing holding it is the guard the reviewer decided — a release never overrides default
  deny, clearance, consent, an expired agreement or another hold. The view is built as for
  any delivery; the audit record (rule ``review:release``) names the reviewer, the
  decision, the reason and the time.

Decided or not carried out, the hold for that partner is closed: a closure record goes to
the held topic in the same transaction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime

from broker.audit import RecipientOutcome
from broker.errors import MshtError
from broker.kafka.records import Incoming, Outgoing
from broker.logging import get_logger
from broker.policy import decide
from broker.policy.model import HOLDING_GUARDS
from broker.review.authority import Accepted, Refusal, accept
from broker.review.closing import NOT_CARRIED_OUT, decision_id, statement
from broker.review.decision import ReviewDecision, Verdict
from broker.review.held import Closure, HeldRecord, build_closure, open_for_router
from broker.review.notice import Notice, Status
from broker.router.holding import notice_output
from broker.router.processor import RouteProcessor
from broker.router.route import (
    LOG_APPEND_TIME,
    Arrival,
    Delivery,
    Quarantined,
    Routed,
    admit,
    deliver_view,
)
from broker.types import EventId, Outcome

_log = get_logger(__name__)

ALREADY_DECIDED = "already-decided"


def decision_key(hold_id: str, partner: str) -> EventId:
    """The id a decision is audited and de-duplicated under: one per hold and partner."""
    return EventId(decision_id(hold_id, partner))


@dataclass
class DecisionProcessor(RouteProcessor):
    """The :class:`~broker.router.engine.PartitionProcessor` of one decisions partition."""

    def _process(self, record: Incoming) -> list[Outgoing]:
        now = self.clock()
        try:
            identity = self.config.identity
            checked = accept(
                record.value,
                policy=self.config.policy.policy,
                trust=self.config.trust,
                router_key=identity.signing_key.public_key,
                now=now,
            )
            if isinstance(checked, Refusal):
                return self._quarantine(record, Quarantined(checked.reason, checked.error), now)
            return self._carry_out(record, checked, now)
        except Exception as exc:
            _log.exception("decision failed", topic=record.topic, offset=record.offset)
            failed = Quarantined("internal-error", f"router error {type(exc).__name__}")
            return self._quarantine(record, failed, now)

    def _carry_out(self, record: Incoming, accepted: Accepted, now: datetime) -> list[Outgoing]:
        d, held = accepted.decision, accepted.held
        key = decision_key(held.hold_id, d.partner)
        if key in self.dedup:
            return self._quarantine(
                record,
                Quarantined(
                    ALREADY_DECIDED,
                    f"hold {held.hold_id} for partner {d.partner} was already decided; "
                    "a hold is decided once (this decision is not carried out)",
                    key,
                    held.source,
                    held.subject,
                ),
                now,
            )
        said = statement(d.verdict.value, d.reviewer, d.decided_at, d.guard, d.reason)
        if d.verdict is Verdict.REFUSE:
            outcome = RecipientOutcome(d.partner, Outcome.WITHHOLD, "review:refuse", reason=said)
            deliveries: tuple[Delivery, ...] = ()
        else:
            outcome, deliveries = self._release(record, d, held, said, now)
        routed = Routed(
            event_id=key,
            source=held.source,
            subject=held.subject,
            policy_version=self.config.policy.version,
            deliveries=deliveries,
            outcomes=(outcome,),
        )
        digest = hashlib.sha256(record.value).hexdigest()
        out = self._deliver(record, routed, digest, now)
        closure = Closure(
            hold_id=held.hold_id,
            partner=d.partner,
            verdict=d.verdict.value,
            outcome=outcome.outcome.value,
            reviewer=d.reviewer,
            decided_at=d.decided_at,
        )
        if self.topics.held is not None:
            value = build_closure(self.config.identity.signing_key, closure)
            # Before the audit record, which stays last (as for every input).
            out.insert(
                len(out) - 1,
                Outgoing(self.topics.held, value, key=held.hold_id.encode("ascii")),
            )
        status = (
            Status.REFUSED
            if d.verdict is Verdict.REFUSE
            else Status.RELEASED
            if outcome.outcome is Outcome.DELIVER
            else Status.NOT_RELEASED
        )
        notice = notice_output(
            self.config,
            Notice(
                status=status,
                event_id=held.event_id,
                hold_id=held.hold_id,
                source=held.source,
                subject=held.subject,
                partners=(d.partner,),
                guard=d.guard,
                reason=outcome.reason or "",
                at=now,
                reviewer=d.reviewer,
            ),
        )
        if notice is not None:
            out.insert(len(out) - 1, notice)
        _log.info(
            "review decision carried out",
            hold=held.hold_id,
            partner=d.partner,
            verdict=d.verdict.value,
            outcome=outcome.outcome.value,
            reviewer=d.reviewer,
        )
        return out

    def _release(
        self, record: Incoming, d: ReviewDecision, held: HeldRecord, said: str, now: datetime
    ) -> tuple[RecipientOutcome, tuple[Delivery, ...]]:
        def refused(why: str) -> tuple[RecipientOutcome, tuple[Delivery, ...]]:
            reason = f"{said}{NOT_CARRIED_OUT}{why}"
            return RecipientOutcome(
                d.partner, Outcome.WITHHOLD, "review:release", reason=reason
            ), ()

        identity = self.config.identity
        try:
            original = open_for_router(held, identity.agency, identity.encryption_keys)
        except MshtError as exc:
            return refused(f"the held event cannot be opened ({exc})")
        arrival = Arrival(
            topic=held.input.topic,
            partition=held.input.partition,
            partitions=held.input.partitions,
            key=held.input.key,
            timestamp_ms=held.input.appended_ms,
            timestamp_type=LOG_APPEND_TIME,
        )
        admitted = admit(self.config, arrival, original, now)
        if isinstance(admitted, Quarantined):
            return refused(f"the held event no longer verifies ({admitted.reason})")
        if admitted.envelope.header.event_id != held.event_id:
            return refused("the held event is not the event the hold names")
        try:
            pd = decide(self.config.policy, admitted.facts, now).for_partner(d.partner)
        except KeyError:
            return refused(f"partner {d.partner} is no longer in the registry")
        others = sorted(g for g in pd.guards if g in HOLDING_GUARDS and g != d.guard)
        if pd.outcome is Outcome.WITHHOLD:
            return refused(f"a release cannot override {pd.decided_by}: {pd.reason}")
        if others:
            return refused(f"still held by {', '.join(others)}, which this decision is not about")
        try:
            delivery = deliver_view(
                self.config, admitted, original, replace(pd, outcome=Outcome.DELIVER), now
            )
        except MshtError as exc:
            return refused(f"not delivered: {exc}")
        outcome = RecipientOutcome(
            d.partner,
            Outcome.DELIVER,
            "review:release",
            view=pd.view,
            lawful_basis=str(pd.basis) if pd.basis is not None else None,
            reason=said,
        )
        return outcome, (delivery,)
