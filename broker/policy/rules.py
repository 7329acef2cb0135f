"""Rule matching: which events a rule's ``match`` admits, and which partners a rule speaks for."""

from __future__ import annotations

from collections.abc import Collection

from broker.policy.facts import EventFacts
from broker.policy.model import Match, Partner, Policy, Rule


def _one_of(allowed: Collection[str] | None, value: str) -> bool:
    return allowed is None or value in allowed


def _any_of(allowed: Collection[str] | None, values: Collection[str]) -> bool:
    return allowed is None or any(v in allowed for v in values)


def matches(match: Match, facts: EventFacts) -> bool:
    """Whether an event with these facts satisfies every attribute ``match`` constrains."""
    return (
        _one_of(match.event_types, facts.event_type)
        and _one_of(match.sources, facts.source)
        and facts.classification in match.allowed_classifications()
        and _one_of(match.siena_handling, facts.siena_handling)
        and _one_of(match.grading_handling, facts.grading_handling)
        and _one_of(match.tlp, facts.tlp)
        and _one_of(match.victim_age_groups, facts.victim_age_group)
        and _one_of(match.victim_consent, facts.victim_consent)
        and _any_of(match.countries, facts.countries)
        and _any_of(match.exploitation_types, facts.exploitation_types)
    )


def targets(rule: Rule, policy: Policy) -> frozenset[str]:
    """The partner ids a rule decides for (a deny without ``partners`` speaks for everyone)."""
    if rule.deliver is not None:
        return policy.expand(rule.deliver.to)
    if rule.deny is not None and rule.deny.partners is not None:
        return policy.expand(rule.deny.partners)
    return frozenset(p.id for p in policy.partners)


def subscribed(partner: Partner, facts: EventFacts) -> bool:
    """Whether the partner asked for this event: its type, countries and exploitation types."""
    subs = partner.subscriptions
    return (
        facts.event_type in subs.event_types
        and _any_of(subs.countries, facts.countries)
        and _any_of(subs.exploitation_types, facts.exploitation_types)
    )


def _wider(a: Collection[str] | None, b: Collection[str] | None) -> bool:
    """``a`` admits every value ``b`` admits."""
    return a is None or (b is not None and set(b) <= set(a))


def covers(a: Match, b: Match) -> bool:
    """Whether every event matching ``b`` also matches ``a`` (so ``a`` shadows a later ``b``)."""
    return (
        _wider(a.event_types, b.event_types)
        and _wider(a.sources, b.sources)
        and b.allowed_classifications() <= a.allowed_classifications()
        and _wider(a.siena_handling, b.siena_handling)
        and _wider(a.grading_handling, b.grading_handling)
        and _wider(a.tlp, b.tlp)
        and _wider(a.victim_age_groups, b.victim_age_groups)
        and _wider(a.victim_consent, b.victim_consent)
        and _wider(a.countries, b.countries)
        and _wider(a.exploitation_types, b.exploitation_types)
    )
