"""Consistency checks on a loaded policy: what ``msht policy check`` reports beyond parsing."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from broker.errors import PolicyError
from broker.events.fields import ROLES, FieldInfo
from broker.events.schemas import EVENT_TYPES, SchemaRegistry, registry
from broker.policy.model import LoadedPolicy, Policy, Rule, View, load_policy
from broker.policy.rules import covers, targets
from broker.policy.views import plan_view


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
    problems += view_problems(policy)
    for i, p in enumerate(policy.partners):
        if p.agreement is not None and not p.agreement.live(now):
            problems.append(
                f"partners[{i}] ({p.id}).agreement: {p.agreement.id} expired on "
                f"{p.agreement.expires.isoformat()}"
            )
    return problems


_TAGS = ("remove_tags", "mask_tags", "seal_tags")
_PATHS = ("remove_fields", "mask_fields", "seal_fields")


def view_problems(policy: Policy, catalogue: SchemaRegistry | None = None) -> list[str]:
    """Views that do not do what they say.

    A tag, path or role a view names must select a field of some payload record of the event
    types the view can be applied to (those of the rules that deliver in it; every type for
    a view no rule uses). And a view that names something to withhold must withhold
    something from each such record: ``remove_tags: [operational]`` when no field is tagged
    ``operational`` silently delivers everything.
    """
    cat = catalogue if catalogue is not None else registry()
    problems: list[str] = []
    for name, view in policy.views.items():
        where = f"views.{name}"
        types = _event_types_of(policy, name)
        records = sorted({EVENT_TYPES[t] for t in types})
        fields = {r: cat.fields(r) for r in records}
        every = [f for r in records for f in fields[r]]
        short = ", ".join(r.rsplit(".", 1)[-1] for r in records)
        for attr in _TAGS:
            for tag in getattr(view, attr):
                if not any(tag in f.tags for f in every):
                    problems.append(
                        f"{where}.{attr}: tag {tag!r} is on no field of {short} "
                        f"(event types {', '.join(sorted(types))})"
                    )
        for attr in _PATHS:
            for path in getattr(view, attr):
                if not any(f.path == path for f in every):
                    problems.append(f"{where}.{attr}: {path!r} is no field of {short}")
        for role in view.remove_roles:
            if role not in ROLES:
                problems.append(
                    f"{where}.remove_roles: {role!r} is not one of {', '.join(sorted(ROLES))}"
                )
            elif not any(f.role == role for f in every):
                problems.append(f"{where}.remove_roles: no field of {short} is about a {role}")
        if _withholds_something(view):
            for r in records:
                if _removes_nothing(view, fields[r]):
                    problems.append(
                        f"{where}: withholds nothing from {r.rsplit('.', 1)[-1]} although it "
                        "names fields to withhold"
                    )
    return problems


def _event_types_of(policy: Policy, view: str) -> set[str]:
    types: set[str] = set()
    used = False
    for rule in policy.rules:
        if rule.deliver is not None and rule.deliver.view == view:
            used = True
            types |= set(rule.match.event_types or EVENT_TYPES)
    return types if used else set(EVENT_TYPES)


def _withholds_something(view: View) -> bool:
    return any(getattr(view, a) for a in (*_TAGS, *_PATHS, "remove_roles"))


def _removes_nothing(view: View, fields: tuple[FieldInfo, ...]) -> bool:
    plan = plan_view(view, fields)
    return not (plan.actions or plan.sealed or plan.impossible)


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
