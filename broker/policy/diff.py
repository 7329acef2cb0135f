"""What a policy change does, before it goes live: rule by rule and partner by partner.

Pure, over the policy files alone: :func:`diff_policies` compares two policies' rules (added,
removed, changed, moved — order matters, the first rule naming a partner decides for it),
their partner registries, and, for every partner and every event type, the ordered rules
that can decide it (``rule -> view`` for a grant, ``rule -> deny``). :func:`redecide`
compares the two policies' decisions on one event's facts (for ``msht policy diff
--replay``). Identifiers only: rule, partner, view and event-type names, never a field value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from broker.events.schemas import EVENT_TYPES
from broker.policy.decide import decide
from broker.policy.facts import EventFacts
from broker.policy.model import LoadedPolicy, Policy, Rule
from broker.policy.rules import targets


@dataclass(frozen=True)
class RuleChange:
    """One rule that differs: ``added``, ``removed``, ``changed`` (naming the parts) or
    ``moved`` (same content, another position)."""

    rule: str
    change: str
    detail: str = ""


@dataclass(frozen=True)
class PartnerChange:
    """One partner registry entry added, removed or changed (naming the fields)."""

    partner: str
    change: str
    detail: str = ""


@dataclass(frozen=True)
class Reach:
    """For one partner and event type, the ordered rules that can decide it, before and after."""

    partner: str
    event_type: str
    before: tuple[str, ...]
    after: tuple[str, ...]

    @property
    def granted(self) -> tuple[str, ...]:
        """Grants (``rule -> view``) the proposed policy has and the current one lacks."""
        return tuple(g for g in self.after if g not in self.before and "-> deny" not in g)

    @property
    def withdrawn(self) -> tuple[str, ...]:
        """Grants the current policy has and the proposed one lacks."""
        return tuple(g for g in self.before if g not in self.after and "-> deny" not in g)


@dataclass(frozen=True)
class PolicyDiff:
    """Everything that differs between two policies."""

    rules: tuple[RuleChange, ...]
    partners: tuple[PartnerChange, ...]
    reach: tuple[Reach, ...]

    @property
    def empty(self) -> bool:
        """True when the two policies decide every event alike."""
        return not (self.rules or self.partners or self.reach)


def _fields_differ(a: Rule, b: Rule) -> list[str]:
    return [
        name
        for name in ("description", "match", "deliver", "deny")
        if getattr(a, name) != getattr(b, name)
    ]


def _rule_changes(current: Policy, proposed: Policy) -> list[RuleChange]:
    old = {r.id: (i, r) for i, r in enumerate(current.rules)}
    new = {r.id: (i, r) for i, r in enumerate(proposed.rules)}
    out: list[RuleChange] = []
    for rule_id, (_, rule) in old.items():
        if rule_id not in new:
            out.append(RuleChange(rule_id, "removed"))
            continue
        differ = _fields_differ(rule, new[rule_id][1])
        if differ:
            out.append(RuleChange(rule_id, "changed", ", ".join(differ)))
    kept_old = [r for r in old if r in new]
    kept_new = [r for r in new if r in old]
    for rule_id in kept_old:
        if kept_old.index(rule_id) != kept_new.index(rule_id):
            before, after = kept_old.index(rule_id) + 1, kept_new.index(rule_id) + 1
            out.append(RuleChange(rule_id, "moved", f"position {before} -> {after}"))
    out.extend(RuleChange(r, "added") for r in new if r not in old)
    return out


def _partner_changes(current: Policy, proposed: Policy) -> list[PartnerChange]:
    old = {p.id: p for p in current.partners}
    new = {p.id: p for p in proposed.partners}
    out = [PartnerChange(p, "removed") for p in old if p not in new]
    for pid, partner in old.items():
        if pid in new and partner != new[pid]:
            differ = [
                name
                for name in type(partner).model_fields
                if getattr(partner, name) != getattr(new[pid], name)
            ]
            out.append(PartnerChange(pid, "changed", ", ".join(differ)))
    out.extend(PartnerChange(p, "added") for p in new if p not in old)
    return out


def reach(policy: Policy, partner: str, event_type: str) -> tuple[str, ...]:
    """The rules that can decide ``event_type`` for ``partner``, in the order they are tried.

    Empty when the partner is not in the registry or has not subscribed to the event type
    (it is then never sent one). Other match attributes (classification, sources, ...) are
    not evaluated: this is what a rule *can* do; ``--replay`` shows what it did.
    """
    entry = policy.partner(partner)
    if entry is None or event_type not in entry.subscriptions.event_types:
        return ()
    out: list[str] = []
    for rule in policy.rules:
        types = rule.match.event_types
        if types is not None and event_type not in types:
            continue
        if partner not in targets(rule, policy):
            continue
        view = rule.deliver.view if rule.deliver is not None else "deny"
        out.append(f"{rule.id} -> {view}")
    return tuple(out)


def diff_policies(
    current: LoadedPolicy, proposed: LoadedPolicy, event_types: Sequence[str] | None = None
) -> PolicyDiff:
    """Rules, partners and per-partner reach that differ between ``current`` and ``proposed``."""
    types = sorted(event_types if event_types is not None else EVENT_TYPES)
    partners = sorted(
        {p.id for p in current.policy.partners} | {p.id for p in proposed.policy.partners}
    )
    changed = [
        Reach(p, t, before, after)
        for p in partners
        for t in types
        if (before := reach(current.policy, p, t)) != (after := reach(proposed.policy, p, t))
    ]
    return PolicyDiff(
        tuple(_rule_changes(current.policy, proposed.policy)),
        tuple(_partner_changes(current.policy, proposed.policy)),
        tuple(changed),
    )


@dataclass(frozen=True)
class Redecided:
    """One partner whose outcome for one event would differ under the proposed policy."""

    event_id: str
    event_type: str
    partner: str
    before: str
    after: str
    """Each ``<outcome> by <rule or guard> [view <view>]``."""


def _said(outcome: str, decided_by: str, view: str | None) -> str:
    return f"{outcome} by {decided_by}" + (f" view {view}" if view else "")


def redecide(
    current: LoadedPolicy, proposed: LoadedPolicy, facts: EventFacts, now: datetime
) -> list[Redecided]:
    """The partners for which ``facts`` would be decided differently (pure)."""
    before = {d.partner: d for d in decide(current, facts, now).partners}
    after = {d.partner: d for d in decide(proposed, facts, now).partners}
    out: list[Redecided] = []
    for partner in sorted(set(before) | set(after)):
        old, new = before.get(partner), after.get(partner)
        was = _said(old.outcome, old.decided_by, old.view) if old else "not in registry"
        now_ = _said(new.outcome, new.decided_by, new.view) if new else "not in registry"
        if was != now_:
            out.append(Redecided(facts.event_id, facts.event_type, partner, was, now_))
    return out
