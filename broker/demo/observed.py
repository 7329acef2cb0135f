"""What a demo run saw, as plain values, and the gaps between what should and did happen.

Nothing here talks to Kafka: the runner fills an :class:`Observed` from the publishers'
reports, the audit and quarantine topics and the subscribers' reports, and
:func:`missing` lists everything the exchange failed to do (an event the router never
decided, a delivery no subscriber rendered, a broken audit chain ...). The demo exits 0
only when that list is empty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from broker.audit import AuditRecord, ChainReport, RecipientOutcome, chain_id
from broker.crypto.view_check import ORIGINATOR_AND_ROUTER
from broker.review.closing import Statement, decision_id, read_statement
from broker.review.held import hold_id_of

LOOPBACK_RULES = frozenset({"not-subscribed", "source-loopback"})
"""Outcomes that only say a partner never asked for the event (shown dimmed, not as refusals)."""


@dataclass(frozen=True)
class PublishedInput:
    """One event an agency's publisher had acknowledged by the broker."""

    agency: str
    file: str
    row: int | None
    event_id: str
    event_type: str
    topic: str
    partition: int
    offset: int
    forged: bool = False


@dataclass(frozen=True)
class RejectedInput:
    """One problem with a native document or CSV row that its adapter refused."""

    agency: str
    file: str
    row: int | None
    message: str
    location: str
    reason: str


@dataclass(frozen=True)
class QuarantinedInput:
    """A record the router put in quarantine, with the reason from its headers."""

    source_topic: str
    offset: int
    reason: str
    error: str


@dataclass(frozen=True)
class RenderedFile:
    """A delivery a partner's subscriber verified and wrote in its native format."""

    partner: str
    event_id: str
    event_type: str
    fmt: str
    path: Path | None
    verified: str | None = None
    """Which signatures the subscriber verified (``originator and router`` for a committed
    view; :mod:`broker.crypto.view_check`)."""


@dataclass(frozen=True)
class FailedDelivery:
    """A delivery a partner's subscriber could not verify, open or render."""

    partner: str
    offset: int
    reason: str


@dataclass(frozen=True)
class ReviewSent:
    """A decision the demo's reviewer signed and sent to the decisions topic."""

    hold_id: str
    event_id: str
    partner: str
    guard: str
    verdict: str
    reviewer: str
    reason: str


@dataclass(frozen=True)
class NoticeSeen:
    """A status notice (held, released, refused ...) a partner's subscriber received."""

    recipient: str
    status: str
    event_id: str
    hold_id: str
    partners: tuple[str, ...]
    reviewer: str | None


@dataclass(frozen=True)
class ReviewOutcome:
    """What the router did with a reviewer's decision, read from its audit record."""

    event_id: str
    """The held event's id (not the decision's audit id)."""
    record: AuditRecord
    outcome: RecipientOutcome
    said: Statement | None


@dataclass(frozen=True)
class Check:
    """One thing the demo's story expects, and whether it happened."""

    name: str
    ok: bool
    detail: str


@dataclass
class Observed:
    """Everything one demo run saw."""

    partners: tuple[str, ...]
    published: list[PublishedInput] = field(default_factory=list)
    rejected: list[RejectedInput] = field(default_factory=list)
    audit: list[AuditRecord] = field(default_factory=list)
    quarantined: list[QuarantinedInput] = field(default_factory=list)
    rendered: list[RenderedFile] = field(default_factory=list)
    failed: list[FailedDelivery] = field(default_factory=list)
    reviews: list[ReviewSent] = field(default_factory=list)
    notices: list[NoticeSeen] = field(default_factory=list)
    chain: ChainReport | None = None
    checks: list[Check] = field(default_factory=list)

    # --- views of the audit trail ------------------------------------------------------

    def decisions(self) -> dict[str, AuditRecord]:
        """The decision record of each event id (the first, if a bug ever wrote two).

        Reviewers' decisions on held events are :meth:`review_outcomes`, not here.
        """
        found: dict[str, AuditRecord] = {}
        for record in self.audit:
            if record.kind == "decision" and record.event_id not in self._review_ids():
                found.setdefault(record.event_id, record)
        return found

    def _review_ids(self) -> dict[str, tuple[str, str]]:
        """The audit id of a decision on each published event's hold for each partner, mapped
        to (event id, partner)."""
        return {
            decision_id(hold_id_of(p.agency, p.event_id), partner): (p.event_id, partner)
            for p in self.published
            for partner in self.partners
        }

    def review_outcomes(self) -> dict[tuple[str, str], ReviewOutcome]:
        """What the router did with each reviewer's decision, by (partner, held event id)."""
        ids = self._review_ids()
        found: dict[tuple[str, str], ReviewOutcome] = {}
        for record in self.audit:
            if record.kind != "decision" or record.event_id not in ids:
                continue
            event_id, partner = ids[record.event_id]
            for o in record.outcomes:
                carried = o.outcome == "delivered" or o.rule != "review:release"
                said = read_statement(o.reason, carried_out=carried)
                found.setdefault((partner, event_id), ReviewOutcome(event_id, record, o, said))
        return found

    def audit_kinds(self, event_id: str) -> list[str]:
        """The kinds of every audit record about ``event_id``, in topic order."""
        return [r.kind for r in self.audit if r.event_id == event_id]

    def granted(self) -> set[tuple[str, str]]:
        """Every (partner, event id) the router delivered, on its own or on a release."""
        at_once = {
            (o.partner, record.event_id)
            for record in self.decisions().values()
            for o in record.outcomes
            if o.outcome == "delivered"
        }
        released = {
            key for key, r in self.review_outcomes().items() if r.outcome.outcome == "delivered"
        }
        return at_once | released

    def received_copies(self) -> list[tuple[str, str]]:
        """(partner, event id) of every rendering, a delivery rendered twice twice."""
        return [(r.partner, r.event_id) for r in self.rendered]

    def received(self) -> set[tuple[str, str]]:
        """Every (partner, event id) a subscriber rendered."""
        return {(r.partner, r.event_id) for r in self.rendered}

    def quarantine_of(self, item: PublishedInput) -> QuarantinedInput | None:
        """The quarantine record of a published input, matched by topic and offset."""
        for q in self.quarantined:
            if q.source_topic == item.topic and q.offset == item.offset:
                return q
        return None

    def settled(self, item: PublishedInput) -> bool:
        """True once the router has written the audit record that decides ``item``."""
        chain = chain_id(item.topic, item.partition)
        return any(r.chain == chain and r.input_offset == item.offset for r in self.audit)

    def unsettled(self) -> list[PublishedInput]:
        """Published inputs the router has not decided yet."""
        return [p for p in self.published if not self.settled(p)]

    def originator_verified(self) -> list[RenderedFile]:
        """Rendered views whose originating agency's own signature verified from the view."""
        return [r for r in self.rendered if r.verified == ORIGINATOR_AND_ROUTER]

    def undelivered(self) -> list[tuple[str, str]]:
        """Deliveries the router granted that no subscriber has rendered yet."""
        return sorted(self.granted() - self.received())


def missing(observed: Observed) -> list[str]:
    """Everything that should have happened and did not; empty when the run is complete."""
    problems: list[str] = []
    for item in observed.unsettled():
        problems.append(
            f"the router wrote no audit record for event {item.event_id} "
            f"({item.event_type} from {item.agency}, {item.file})"
        )
    decisions = observed.decisions()
    for item in observed.published:
        if item.forged and item.event_id in decisions:
            problems.append(f"forged event {item.event_id} was decided, not quarantined")
        if item.forged and observed.quarantine_of(item) is None:
            problems.append(f"forged event {item.event_id} is not on the quarantine topic")
    for partner, event_id in observed.undelivered():
        problems.append(f"{partner}'s subscriber never rendered event {event_id}, granted to it")
    for partner, event_id in sorted(observed.received() - observed.granted()):
        problems.append(f"{partner} rendered event {event_id}, which the router never granted it")
    for failed in observed.failed:
        problems.append(
            f"{failed.partner}'s subscriber could not handle offset {failed.offset}: "
            f"{failed.reason}"
        )
    for r in observed.rendered:
        if r.verified != ORIGINATOR_AND_ROUTER:
            problems.append(
                f"{r.partner}'s view of event {r.event_id} was not verified against its "
                f"originating agency's signature ({r.verified or 'no record'})"
            )
    if observed.chain is None:
        problems.append("the audit chain was not verified")
    elif not observed.chain.ok:
        problems.append(f"the audit chain is broken: {observed.chain.first_break}")
    elif observed.chain.records < len(observed.published):
        problems.append(
            f"the audit topic holds {observed.chain.records} records for "
            f"{len(observed.published)} published inputs"
        )
    outcomes = observed.review_outcomes()
    for review in observed.reviews:
        if (review.partner, review.event_id) not in outcomes:
            problems.append(
                f"the router never carried out {review.reviewer}'s {review.verdict} of hold "
                f"{review.hold_id} for {review.partner}"
            )
    problems.extend(f"{c.name}: {c.detail}" for c in observed.checks if not c.ok)
    return problems


# --- the story's expectations -------------------------------------------------------------

Expectation = Callable[[Observed], Check]


def _rendered(observed: Observed, partner: str, event_type: str) -> list[RenderedFile]:
    return [r for r in observed.rendered if r.partner == partner and r.event_type == event_type]


def receives(partner: str, event_type: str, fmt: str | None = None) -> Expectation:
    """``partner``'s subscriber renders at least one ``event_type`` (in ``fmt``, if given)."""
    wanted = f"{event_type} as {fmt}" if fmt else event_type
    name = f"{partner} receives {wanted}"

    def check(observed: Observed) -> Check:
        found = [r for r in _rendered(observed, partner, event_type) if fmt is None or r.fmt == fmt]
        if found:
            return Check(name, True, ", ".join(str(r.path or r.event_id) for r in found))
        return Check(name, False, f"no {wanted} in {partner}'s outbox")

    return check


def renders_people(
    partner: str, event_type: str, marker: str, shown: Sequence[str], hidden: Sequence[str]
) -> Expectation:
    """``partner`` renders the ``event_type`` whose document holds ``marker`` (a URN) with
    every string in ``shown`` and none in ``hidden`` (one decision per person)."""
    name = f"{partner} reads {', '.join(shown)} but not {', '.join(hidden)} in {marker}"

    def check(observed: Observed) -> Check:
        for r in _rendered(observed, partner, event_type):
            if r.path is None or not r.path.exists():
                continue
            text = r.path.read_text(encoding="utf-8")
            if marker not in text:
                continue
            leaked = [h for h in hidden if h in text]
            lost = [s for s in shown if s not in text]
            if leaked or lost:
                return Check(name, False, f"leaked {leaked}, missing {lost} in {r.path}")
            return Check(name, True, str(r.path))
        return Check(name, False, f"no {event_type} about {marker} in {partner}'s outbox")

    return check


def receives_nothing_of(partner: str, event_type: str) -> Expectation:
    """``partner``'s subscriber renders no ``event_type`` at all."""
    name = f"{partner} receives no {event_type}"

    def check(observed: Observed) -> Check:
        found = _rendered(observed, partner, event_type)
        if found:
            return Check(name, False, f"it rendered {len(found)}")
        why = _why_not(observed, partner, event_type)
        return Check(name, True, why or "nothing rendered")

    return check


def _why_not(observed: Observed, partner: str, event_type: str) -> str | None:
    types = {p.event_id: p.event_type for p in observed.published}
    for record in observed.decisions().values():
        if types.get(record.event_id) != event_type:
            continue
        for o in record.outcomes:
            if o.partner == partner and o.outcome != "delivered":
                return f"{o.outcome} by {o.rule}"
    return None


def granted_view(
    partner: str, event_type: str, view: str, basis: str | None, transfer: str | None = None
) -> Expectation:
    """The router delivers ``event_type`` to ``partner`` in ``view`` on lawful ``basis`` (and,
    abroad, on documented ``transfer`` basis)."""
    under = f" under {basis}" if basis else ""
    if transfer:
        under += f", transferred on {transfer} (documented)"
    name = f"{partner} is granted {event_type} in view {view!r}{under}"

    def check(observed: Observed) -> Check:
        types = {p.event_id: p.event_type for p in observed.published}
        outcomes = [
            o
            for eid, record in observed.decisions().items()
            if types.get(eid) == event_type
            for o in record.outcomes
            if o.partner == partner and o.rule != "not-subscribed"
        ]
        if not outcomes:
            return Check(name, False, f"no decision on a {event_type} for {partner}")
        seen = ", ".join(
            f"{o.outcome} {o.view or ''} {o.lawful_basis or ''} {_transfer_basis(o) or ''}".strip()
            for o in outcomes
        )
        ok = all(
            o.outcome == "delivered"
            and o.view == view
            and o.lawful_basis == basis
            and _transfer_basis(o) == transfer
            for o in outcomes
        )
        return Check(name, ok, seen)

    return check


def _transfer_basis(outcome: RecipientOutcome) -> str | None:
    """The documented transfer basis of an audit outcome, if it records a transfer."""
    if outcome.transfer is None:
        return None
    basis = outcome.transfer.get("basis")
    return str(basis) if basis is not None else None


def held_for(partner: str, event_type: str, guard: str) -> Expectation:
    """An ``event_type`` is held for ``partner`` by ``guard``, with its transfer documented,
    and none is delivered to it."""
    name = f"{event_type} held for {partner} ({guard}), transfer documented"

    def check(observed: Observed) -> Check:
        types = {p.event_id: p.event_type for p in observed.published}
        outcomes = [
            o
            for eid, record in observed.decisions().items()
            if types.get(eid) == event_type
            for o in record.outcomes
            if o.partner == partner
        ]
        if not outcomes:
            return Check(name, False, f"no decision on a {event_type} for {partner}")
        ok = not any(o.outcome == "delivered" for o in outcomes) and any(
            o.outcome == "held" and o.rule == guard and o.transfer for o in outcomes
        )
        seen = ", ".join(f"{o.outcome} {o.rule} {_transfer_basis(o) or ''}" for o in outcomes)
        return Check(name, ok, seen.strip())

    return check


def _ids_of(observed: Observed, event_type: str, source: str) -> set[str]:
    return {
        p.event_id for p in observed.published if p.agency == source and p.event_type == event_type
    }


def held_for_review(event_type: str, source: str, partners: Sequence[str]) -> Expectation:
    """The router's own decision on an ``event_type`` from ``source`` holds it for exactly
    ``partners`` and delivers it to no one (anything later is a reviewer's doing)."""
    name = f"{event_type} from {source} held for {', '.join(partners)}, sent to no one"

    def check(observed: Observed) -> Check:
        ids = _ids_of(observed, event_type, source)
        records = [r for eid, r in observed.decisions().items() if eid in ids]
        if not records:
            return Check(name, False, f"no decision on a {event_type} from {source}")
        outcomes = [o for r in records for o in r.outcomes]
        holds = sorted({f"{o.partner} ({o.rule})" for o in outcomes if o.outcome == "held"})
        held_for = {str(o.partner) for o in outcomes if o.outcome == "held"}
        sent = [o.partner for o in outcomes if o.outcome == "delivered"]
        if sent or held_for != set(partners):
            return Check(name, False, f"held for {holds or 'nobody'}, delivered to {sent}")
        return Check(name, True, "held for " + ", ".join(holds))

    return check


def _reviewed(
    observed: Observed, event_type: str, source: str, partner: str, verdict: str
) -> tuple[ReviewSent | None, ReviewOutcome | None, str]:
    """The demo's decision on the hold for ``partner`` and the router's audit of it, or why
    either is missing."""
    ids = _ids_of(observed, event_type, source)
    sent = [
        r
        for r in observed.reviews
        if r.event_id in ids and r.partner == partner and r.verdict == verdict
    ]
    if not sent:
        return None, None, f"no reviewer sent a {verdict} for {partner}"
    done = observed.review_outcomes().get((partner, sent[0].event_id))
    if done is None:
        return sent[0], None, f"the router has not audited the {verdict} for {partner}"
    said = done.said
    if said is None or (said.reviewer, said.reason) != (sent[0].reviewer, sent[0].reason):
        return sent[0], None, f"the audit does not name the reviewer and reason: {done.outcome}"
    return sent[0], done, ""


def released_once(event_type: str, source: str, partner: str) -> Expectation:
    """A reviewer released the held ``event_type`` for ``partner``; the router audited the
    release naming the reviewer and reason, and ``partner`` rendered the event exactly once."""
    name = f"{event_type} from {source}: held -> released for {partner}, delivered once"

    def check(observed: Observed) -> Check:
        sent, done, why = _reviewed(observed, event_type, source, partner, "release")
        if sent is None or done is None:
            return Check(name, False, why)
        o = done.outcome
        if (o.outcome, o.rule) != ("delivered", "review:release"):
            return Check(name, False, f"audited {o.outcome} by {o.rule}: {o.reason}")
        copies = [
            r for r in observed.rendered if (r.partner, r.event_id) == (partner, sent.event_id)
        ]
        if len(copies) != 1:
            return Check(name, False, f"{partner} rendered it {len(copies)} time(s)")
        return Check(name, True, f"released by {sent.reviewer} ({sent.reason}); {copies[0].path}")

    return check


def refused_never_delivered(event_type: str, source: str, partner: str) -> Expectation:
    """A reviewer refused the held ``event_type`` for ``partner``; the router audited the
    refusal naming the reviewer and reason, and ``partner`` never rendered the event."""
    name = f"{event_type} from {source}: held -> refused for {partner}, never delivered"

    def check(observed: Observed) -> Check:
        sent, done, why = _reviewed(observed, event_type, source, partner, "refuse")
        if sent is None or done is None:
            return Check(name, False, why)
        o = done.outcome
        if (o.outcome, o.rule) != ("withheld", "review:refuse"):
            return Check(name, False, f"audited {o.outcome} by {o.rule}: {o.reason}")
        if (partner, sent.event_id) in observed.received():
            return Check(name, False, f"{partner} rendered it")
        return Check(name, True, f"refused by {sent.reviewer} ({sent.reason}); nothing rendered")

    return check


def told(source: str, event_type: str, statuses: Sequence[str]) -> Expectation:
    """``source``'s subscriber received a status notice of each of ``statuses`` about its
    ``event_type``."""
    name = f"{source} is told its {event_type} was {', '.join(statuses)}"

    def check(observed: Observed) -> Check:
        ids = _ids_of(observed, event_type, source)
        got = [n for n in observed.notices if n.recipient == source and n.event_id in ids]
        seen = sorted({n.status for n in got})
        lacking = [s for s in statuses if s not in seen]
        detail = "; ".join(
            f"{n.status} ({', '.join(n.partners)}" + (f", by {n.reviewer})" if n.reviewer else ")")
            for n in got
        )
        if lacking:
            return Check(name, False, f"no {', '.join(lacking)} notice; got: {detail or 'none'}")
        return Check(name, True, detail)

    return check


def quarantined_forgery() -> Expectation:
    """Every forged input is on the quarantine topic and was delivered to no one."""
    name = "forged event quarantined"

    def check(observed: Observed) -> Check:
        forged = [p for p in observed.published if p.forged]
        if not forged:
            return Check(name, False, "no forged event was published")
        found = [observed.quarantine_of(p) for p in forged]
        if any(q is None for q in found):
            return Check(name, False, "not on the quarantine topic")
        return Check(name, True, ", ".join(f"{q.reason}: {q.error}" for q in found if q))

    return check


def rejected_from(agency: str, file: str) -> Expectation:
    """The adapter refused at least one document or row of ``file``."""
    name = f"{agency}'s adapter rejects bad input in {file}"

    def check(observed: Observed) -> Check:
        found = [r for r in observed.rejected if r.agency == agency and r.file == file]
        if not found:
            return Check(name, False, "nothing was rejected")
        rows = sorted({r.row for r in found if r.row is not None})
        where = f"rows {', '.join(map(str, rows))}" if rows else "the document"
        return Check(name, True, f"{len(found)} problem(s) in {where}")

    return check


def evaluate(observed: Observed, expectations: Iterable[Expectation]) -> Sequence[Check]:
    """Run every expectation against ``observed`` (and keep the results on it)."""
    observed.checks = [expect(observed) for expect in expectations]
    return observed.checks
