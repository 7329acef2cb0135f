"""Consistency checks on a loaded policy: what ``msht policy check`` reports beyond parsing."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from broker.errors import PolicyError
from broker.policy.model import LoadedPolicy, Policy, Rule, load_policy
from broker.policy.rules import covers, targets


def check_policy(policy: Policy, now: datetime) -> list[str]:
    """Every problem found, each naming its location; an empty list means the policy is sound.

    Finds rules naming unknown partners, groups or views; rules no event can reach because
    earlier rules matching a superset of events already decide for all their partners; rules
    that grant events above a partner's clearance; and data-sharing agreements that have expired.
    """
    problems: list[str] = []
    known = {p.id for p in policy.partners} | set(policy.groups())
    for i, rule in enumerate(policy.rules):
        where = f"rules[{i}] ({rule.id})"
        problems += _unknown_names(rule, where, known)
        if rule.deliver is not None and rule.deliver.view not in policy.views:
            problems.append(f"{where}.deliver.view: unknown view {rule.deliver.view!r}")
        problems += _over_clearance(policy, rule, where)
        shadow = _shadowed_by(policy, i)
        if shadow is not None:
            problems.append(
                f"{where}: unreachable — earlier rule(s) {', '.join(shadow)} match every "
                "event it matches and decide for every partner it names"
            )
    for i, p in enumerate(policy.partners):
        if p.agreement is not None and not p.agreement.live(now):
            problems.append(
                f"partners[{i}] ({p.id}).agreement: {p.agreement.id} expired on "
                f"{p.agreement.expires.isoformat()}"
            )
    return problems


def _unknown_names(rule: Rule, where: str, known: set[str]) -> list[str]:
    named: list[tuple[str, list[str]]] = []
    if rule.deliver is not None:
        named.append(("deliver.to", rule.deliver.to))
    if rule.deny is not None and rule.deny.partners is not None:
        named.append(("deny.partners", rule.deny.partners))
    return [
        f"{where}.{field}: unknown partner or group {name!r}"
        for field, names in named
        for name in names
        if name not in known
    ]


def _over_clearance(policy: Policy, rule: Rule, where: str) -> list[str]:
    if rule.deliver is None:
        return []
    top = max(rule.match.allowed_classifications(), key=lambda c: c.rank, default=None)
    if top is None:
        return []
    out: list[str] = []
    for pid in sorted(targets(rule, policy)):
        partner = policy.partner(pid)
        if partner is not None and top.rank > partner.clearance.rank:
            out.append(
                f"{where}: grants events up to {top.value} to {pid}, which is cleared to "
                f"{partner.clearance.value} (set match.max_classification)"
            )
    return out


def _shadowed_by(policy: Policy, index: int) -> list[str] | None:
    """Ids of earlier rules that together decide, for every partner, every event rule ``index``
    matches; ``None`` when the rule can still decide something."""
    rule = policy.rules[index]
    remaining = set(targets(rule, policy))
    if not remaining:
        return None
    by: list[str] = []
    for earlier in policy.rules[:index]:
        if not covers(earlier.match, rule.match):
            continue
        hit = remaining & targets(earlier, policy)
        if hit:
            by.append(earlier.id)
            remaining -= hit
        if not remaining:
            return by
    return None


def load_checked_policy(path: Path, now: datetime) -> LoadedPolicy:
    """Load a policy and refuse it (:class:`PolicyError`) if :func:`check_policy` finds problems.

    For the router: it should not start on a policy that an operator's ``msht policy check``
    would reject.
    """
    loaded = load_policy(path)
    problems = check_policy(loaded.policy, now)
    if problems:
        raise PolicyError(
            f"{path}: {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems),
            problems,
        )
    return loaded
