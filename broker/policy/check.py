"""Consistency checks on a loaded policy: what ``msht policy check`` reports beyond parsing."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from broker.errors import PolicyError
from broker.events.fields import ROLES, FieldInfo
from broker.events.markings import TransferBasis
from broker.events.schemas import EVENT_TYPES, SchemaRegistry, registry
from broker.policy.lawful import COMPETENT_AUTHORITY_KINDS, adequacy_list
from broker.policy.model import LoadedPolicy, Partner, Policy, Rule, View, load_policy
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
        if p.agreement is not None and not p.agreement.live(now) and not p.agreement.not_yet(now):
            problems.append(
                f"partners[{i}] ({p.id}).agreement: {p.agreement.id} expired on "
                f"{p.agreement.expires.isoformat()}"
            )
        for why in never_receives(p):
            problems.append(f"partners[{i}] ({p.id}): can never receive: {why}")
    for i, rule in enumerate(policy.rules):
        for pid, why in _always_overridden(policy, rule):
            problems.append(f"rules[{i}] ({rule.id}): every grant to {pid} is overridden: {why}")
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


def never_receives(p: Partner) -> list[str]:
    """Why the guards refuse the partner every event, whatever the event (empty: it can
    receive something)."""
    out: list[str] = []
    a = p.agreement
    if a is None:
        out.append("no information-sharing agreement (guard:agreement)")
    else:
        if p.kind not in COMPETENT_AUTHORITY_KINDS and a.basis is None:
            out.append(f"agreement {a.id} names no lawful basis (guard:agreement)")
        if a.event_types is not None and not set(a.event_types) & set(p.subscriptions.event_types):
            out.append(f"agreement {a.id} covers none of its subscriptions (guard:agreement)")
    if p.overseas:
        t = p.transfer
        if t is None:
            out.append(f"transfer to {p.jurisdiction} has no basis (guard:dpa-s73)")
        elif not t.relevant_authority:
            out.append("not a relevant law-enforcement authority (guard:dpa-s73)")
        elif t.basis is TransferBasis.ADEQUACY and not adequacy_list().covers(p.jurisdiction):
            out.append(
                f"adequacy claimed but {p.jurisdiction} is not on the adequacy list of "
                f"{adequacy_list().as_of.isoformat()} (guard:dpa-s73)"
            )
    return out


def _always_overridden(policy: Policy, rule: Rule) -> list[tuple[str, str]]:
    """(partner, reason) for every partner a deliver rule names whom a guard always refuses
    what the rule grants, whatever the event."""
    if rule.deliver is None:
        return []
    out: list[tuple[str, str]] = []
    for pid in sorted(targets(rule, policy)):
        p = policy.partner(pid)
        if p is None:
            continue
        a = p.agreement
        reasons = never_receives(p)
        if a is not None and a.views is not None and rule.deliver.view not in a.views:
            reasons.append(f"agreement {a.id} does not cover view {rule.deliver.view!r}")
        if (
            a is not None
            and a.event_types is not None
            and rule.match.event_types is not None
            and not set(a.event_types) & set(rule.match.event_types)
        ):
            reasons.append(f"agreement {a.id} covers none of the rule's event types")
        if (
            p.overseas
            and p.transfer is not None
            and rule.deliver.basis is not None
            and rule.deliver.basis is not p.transfer.basis
        ):
            reasons.append(
                f"the rule asserts basis {rule.deliver.basis.value}, {pid}'s is "
                f"{p.transfer.basis.value} (guard:dpa-s73)"
            )
        if reasons:
            out.append((pid, "; ".join(reasons)))
    return out


def policy_notices(policy: Policy, now: datetime) -> list[str]:
    """What an operator should know that does not stop the router: agreements not yet in
    force, and agencies whose publishing is not restricted to a list of event types."""
    out: list[str] = []
    for p in policy.partners:
        a = p.agreement
        if a is not None and a.not_yet(now):
            assert a.starts is not None
            out.append(f"{p.id}: agreement {a.id} starts on {a.starts.isoformat()} (not yet)")
        if p.originates is None:
            out.append(f"{p.id}: no 'originates' list, so it may publish any event type")
    return out


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
