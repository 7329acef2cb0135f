"""Decide, for every partner in the registry, whether an event is delivered, withheld or held.

Order of evaluation for each partner:

1. subscription — a partner gets only the event types (and, for filters, the countries and
   exploitation types) it subscribed to; otherwise ``not-subscribed``;
2. rules, in file order — the first rule that matches the event and names the partner
   (directly, through a group, or a deny that names no one and so applies to all) decides;
   no such rule means ``default-deny``;
3. the source is never sent its own event back unless its registry entry says
   ``receives_own_events`` (``source-loopback``);
4. withholding guards (:data:`broker.policy.guards.WITHHOLD_GUARDS`);
5. identity guards, which replace the view with one that removes identity fields, and
   withhold when no schema-valid view can (an identity-only record);
6. holding guards, which turn an otherwise granted delivery into ``held``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from broker.audit.record import format_time
from broker.events.markings import TransferBasis
from broker.policy.compiled import compiled
from broker.policy.facts import EventFacts
from broker.policy.guards import (
    HOLD_GUARDS,
    MIXED_SENTENCE,
    WITHHOLD_GUARDS,
    Context,
    identity_guards,
    person_guards,
)
from broker.policy.lawful import (
    COMPETENT_AUTHORITY_KINDS,
    TRANSFER_CITATIONS,
    ProcessingBasis,
    Purpose,
    TransferRecord,
)
from broker.policy.model import LoadedPolicy, Partner, Rule, View
from broker.policy.rules import matches, subscribed
from broker.policy.views import IDENTITY, ViewPlan, protect, without_tags
from broker.types import Outcome, PartnerId

DEFAULT_DENY = "default-deny"
NOT_SUBSCRIBED = "not-subscribed"
SOURCE_LOOPBACK = "source-loopback"


@dataclass(frozen=True)
class PartnerDecision:
    """The decision for one partner, with everything an auditor needs to explain it."""

    partner: PartnerId
    outcome: Outcome
    decided_by: str
    """The rule id, the guard (``guard:...``), ``default-deny``, ``not-subscribed`` or
    ``source-loopback`` that settled the outcome."""
    reason: str
    rule: str | None = None
    """The rule that matched, also when a guard overrode it."""
    view: str | None = None
    """Name of the view to build (``<rule view>+no-identity`` when a guard narrowed it)."""
    view_spec: View | None = None
    plan: ViewPlan | None = None
    basis: TransferBasis | None = None
    """Lawful basis of a transfer outside the UK (DPA 2018 ss.74AA-76); ``None`` inside it."""
    guards: tuple[str, ...] = ()
    """Every guard that fired: the withholding or holding ones and those that narrowed the view."""
    withheld: tuple[str, ...] = ()
    """One plain sentence per thing a guard withheld from this partner, and why."""
    agreement: str | None = None
    """The information-sharing agreement the partner receives under (when it has one)."""
    purposes: tuple[Purpose, ...] = ()
    """The purposes that agreement names."""
    lawful_basis: ProcessingBasis | None = None
    """What the disclosure rests on: DPA 2018 Part 3 law-enforcement processing for a competent
    authority, else the basis the agreement names; set whenever a rule granted."""
    transfer: TransferRecord | None = None
    """The ss.75(3)/76(3) documentation of a transfer abroad (delivered or held)."""

    @property
    def removes(self) -> tuple[str, ...]:
        """Field paths the view removes or masks."""
        if self.plan is None:
            return ()
        return self.plan.removed + self.plan.masked

    @property
    def seals(self) -> tuple[str, ...]:
        """Field paths the recipient receives sealed (encrypted to its key)."""
        return self.plan.sealed if self.plan is not None else ()


@dataclass(frozen=True)
class Decision:
    """The decision on one event for every partner in the registry."""

    event_id: str
    policy_version: str
    decided_at: datetime
    partners: tuple[PartnerDecision, ...]

    def for_partner(self, partner: str) -> PartnerDecision:
        """The decision for one partner id (``KeyError`` if it is not in the registry)."""
        for d in self.partners:
            if d.partner == partner:
                return d
        raise KeyError(partner)

    @property
    def deliveries(self) -> tuple[PartnerDecision, ...]:
        """The partners the event is to be delivered to."""
        return tuple(d for d in self.partners if d.outcome is Outcome.DELIVER)


def decide(policy: LoadedPolicy, facts: EventFacts, now: datetime) -> Decision:
    """Decide an event for every partner in ``policy``'s registry. Pure: no I/O."""
    return Decision(
        event_id=facts.event_id,
        policy_version=policy.version,
        decided_at=now,
        partners=tuple(_decide_one(policy, p, facts, now) for p in policy.policy.partners),
    )


def _first_rule(policy: LoadedPolicy, partner: Partner, facts: EventFacts) -> Rule | None:
    # Only the rules that speak for this partner, in file order (groups expanded once per
    # policy, not per rule per partner per event).
    for rule in compiled(policy).rules_for.get(partner.id, ()):
        if matches(rule.match, facts):
            return rule
    return None


def _withhold(
    pid: PartnerId, by: str, reason: str, rule: str | None = None, guards: tuple[str, ...] = ()
) -> PartnerDecision:
    return PartnerDecision(pid, Outcome.WITHHOLD, by, reason, rule=rule, guards=guards)


def lawful_basis_of(partner: Partner) -> ProcessingBasis | None:
    """The basis a disclosure to ``partner`` rests on.

    A competent authority (DPA 2018 s.30) receives under Part 3 for a law-enforcement purpose
    unless its agreement names another basis; any other partner under the basis its agreement
    names, and under none (so nothing is delivered) when it names none.
    """
    a = partner.agreement
    if a is not None and a.basis is not None:
        return a.basis
    if partner.kind in COMPETENT_AUTHORITY_KINDS:
        return ProcessingBasis.LAW_ENFORCEMENT
    return None


def _transfer_record(
    partner: Partner, facts: EventFacts, view: str, plan: ViewPlan, now: datetime
) -> TransferRecord | None:
    t = partner.transfer
    if not partner.overseas or t is None:
        return None
    a = partner.agreement
    why = t.justification or (
        "for " + ", ".join(p.value for p in a.purposes) if a is not None else "not documented"
    )
    return TransferRecord(
        time=format_time(now),
        recipient=partner.id,
        jurisdiction=partner.jurisdiction,
        basis=t.basis,
        justification=f"{TRANSFER_CITATIONS[t.basis]}; {why}",
        instrument=t.instrument,
        event_type=facts.event_type,
        view=view,
        withheld=plan.removed + plan.masked,
        onward_sharing=a.conditions.onward_sharing if a is not None else None,
    )


def _decide_one(
    loaded: LoadedPolicy, partner: Partner, facts: EventFacts, now: datetime
) -> PartnerDecision:
    pid = PartnerId(partner.id)
    if not subscribed(partner, facts):
        return _withhold(pid, NOT_SUBSCRIBED, f"not subscribed to {facts.event_type} as filtered")
    rule = _first_rule(loaded, partner, facts)
    if rule is None:
        return _withhold(pid, DEFAULT_DENY, "no rule grants this event to this partner")
    if rule.deny is not None:
        return _withhold(pid, rule.id, rule.deny.reason, rule=rule.id)
    deliver = rule.deliver
    assert deliver is not None  # load_policy guarantees exactly one of deliver / deny
    view = loaded.policy.views.get(deliver.view)
    if view is None:
        return _withhold(pid, rule.id, f"rule names unknown view {deliver.view!r}", rule=rule.id)
    if partner.id == facts.source and not partner.receives_own_events:
        return _withhold(pid, SOURCE_LOOPBACK, "the source is not sent its own event", rule=rule.id)

    ctx = Context(loaded.policy, partner, facts, deliver, now)
    failed = [(name, why) for name, guard in WITHHOLD_GUARDS if (why := guard(ctx)) is not None]
    if failed:
        return _withhold(
            pid, failed[0][0], failed[0][1], rule=rule.id, guards=tuple(n for n, _ in failed)
        )

    plans = compiled(loaded)
    view_name, plan = deliver.view, plans.plan(deliver.view, view, facts.fields)
    fired: list[str] = []
    narrowing = [g for g in identity_guards(ctx) if _leaves_identity(plan, facts)]
    if narrowing:
        view = without_tags(view, [IDENTITY])
        view_name = f"{deliver.view}+no-identity"
        plan = plans.plan(
            deliver.view, loaded.policy.views[deliver.view], facts.fields, narrowed=True
        )
        fired = [name for name, _ in narrowing]
        if plan.impossible:
            return _withhold(
                pid,
                fired[0],
                f"{narrowing[0][1]}; the record cannot be made non-identifying "
                f"(required: {', '.join(plan.impossible)})",
                rule=rule.id,
                guards=tuple(fired),
            )
    elif plan.impossible:
        return _withhold(
            pid,
            rule.id,
            f"view {deliver.view!r} cannot withhold required field(s) "
            + ", ".join(plan.impossible),
            rule=rule.id,
        )
    sentences = [why for _, why in narrowing]
    people = person_guards(ctx)
    if people:
        people_plan, added = protect(
            plan,
            facts.fields,
            [(p.instance, p.container, p.role) for _, p, _ in people],
            mixed=True,
        )
        if added:
            plan = people_plan
            hidden = sorted({p.label for _, p, _ in people})
            view_name = f"{view_name}+no-identity:{','.join(hidden)}"
            fired += sorted({name for name, _, _ in people} - set(fired))
            sentences += [why for _, _, why in people]
            if any(_is_mixed(facts, a) for a in added):
                sentences.append(MIXED_SENTENCE)
        if plan.impossible:
            return _withhold(
                pid,
                people[0][0],
                f"{people[0][2]}; the record cannot be made non-identifying "
                f"(required: {', '.join(plan.impossible)})",
                rule=rule.id,
                guards=tuple(fired),
            )

    # The transfer basis is the partner's own (the s.73 guard refused any rule that asserts
    # another), so one rule naming several partners abroad records each one's basis.
    basis = partner.transfer.basis if partner.overseas and partner.transfer else None
    held = [(name, why) for name, guard in HOLD_GUARDS if (why := guard(ctx)) is not None]
    outcome, by, reason = Outcome.DELIVER, rule.id, rule.description or "granted by rule"
    if sentences:
        reason += "; identity withheld: " + "; ".join(sentences)
    if held:
        outcome, by, reason = Outcome.HELD, held[0][0], held[0][1]
        fired += [n for n, _ in held]
    return PartnerDecision(
        pid,
        outcome,
        by,
        reason,
        rule=rule.id,
        view=view_name,
        view_spec=view,
        plan=plan,
        basis=basis,
        guards=tuple(fired),
        withheld=tuple(sentences),
        agreement=partner.agreement.id if partner.agreement else None,
        purposes=tuple(partner.agreement.purposes) if partner.agreement else (),
        lawful_basis=lawful_basis_of(partner),
        transfer=_transfer_record(partner, facts, view_name, plan, now),
    )


def _is_mixed(facts: EventFacts, path: str) -> bool:
    return any(f.path == path and f.role == "mixed" for f in facts.fields)


def _leaves_identity(plan: ViewPlan, facts: EventFacts) -> bool:
    """Whether a view would still show any identity field this payload fills in."""
    hidden = plan.covered
    return any(
        not any(p == h or p.startswith((h + ".", h + "[", h + "{")) for h in hidden)
        for p in facts.identity_paths
    )
