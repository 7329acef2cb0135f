"""What a loaded policy means for every event, worked out once instead of per event.

A policy is fixed from load until the router installs another one (a new
:class:`~broker.policy.model.LoadedPolicy`), so everything that depends only on it is computed
on first use and kept with that object:

* the partners each rule speaks for (its ``to`` or ``partners`` with groups expanded), and so
  for each partner the rules, in file order, that can decide for it;
* each view's plan for a payload schema, and the plan of the same view narrowed to remove
  identity fields (:func:`broker.policy.views.plan_view` on the schema alone).

A reload builds a new ``LoadedPolicy`` and so a new :class:`CompiledPolicy`; nothing carries
over from the old one. The results equal what :func:`broker.policy.rules.targets` and
:func:`~broker.policy.views.plan_view` give on the same inputs (tests/unit/test_policy_compiled.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from broker.events.fields import FieldInfo
from broker.policy.model import LoadedPolicy, Policy, Rule, View
from broker.policy.rules import targets
from broker.policy.views import IDENTITY, ViewPlan, plan_view, without_tags

_ATTRIBUTE = "_msht_compiled"
"""Where a :class:`LoadedPolicy` keeps its compiled form (see :func:`compiled`)."""


@dataclass
class CompiledPolicy:
    """The per-policy tables :func:`broker.policy.decide.decide` reads for every event."""

    policy: Policy
    rules_for: dict[str, tuple[Rule, ...]]
    """For each partner id, the rules that name it (directly, by group, or a deny naming no
    one), in file order: the first of these whose match admits an event decides."""
    _plans: dict[tuple[str, bool, int], tuple[Sequence[FieldInfo], ViewPlan]] = field(
        default_factory=dict
    )

    def plan(
        self, name: str, view: View, fields: Sequence[FieldInfo], *, narrowed: bool = False
    ) -> ViewPlan:
        """The plan of ``view`` (named ``name`` in this policy) for ``fields``; ``narrowed``:
        of the view with identity fields removed as well (an identity guard fired).

        Keyed by the fields object itself: the schema catalogue hands out one tuple per
        record, so one lookup serves every event of that record. The tuple is held with the
        plan, so its identity cannot be re-used by another while the entry exists.
        """
        key = (name, narrowed, id(fields))
        found = self._plans.get(key)
        if found is not None and found[0] is fields:
            return found[1]
        spec = without_tags(view, [IDENTITY]) if narrowed else view
        plan = plan_view(spec, fields)
        self._plans[key] = (fields, plan)
        return plan


def compile_policy(policy: Policy) -> CompiledPolicy:
    """The per-policy tables of ``policy`` (pure; see :class:`CompiledPolicy`)."""
    spoken = [(rule, targets(rule, policy)) for rule in policy.rules]
    rules_for = {p.id: tuple(rule for rule, ids in spoken if p.id in ids) for p in policy.partners}
    return CompiledPolicy(policy=policy, rules_for=rules_for)


def compiled(loaded: LoadedPolicy) -> CompiledPolicy:
    """The compiled form of ``loaded``, computed on first use and kept with it.

    ``LoadedPolicy`` is frozen and every policy (re)load makes a new one, so the tables live
    exactly as long as the policy they describe and a reload can never read stale ones.
    """
    found = loaded.__dict__.get(_ATTRIBUTE)
    if isinstance(found, CompiledPolicy) and found.policy is loaded.policy:
        return found
    made = compile_policy(loaded.policy)
    # A frozen dataclass refuses attribute assignment; the cache is not one of its fields
    # (not compared, hashed or shown), so it is set past that check.
    object.__setattr__(loaded, _ATTRIBUTE, made)
    return made
