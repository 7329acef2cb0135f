"""The routing policy: who receives each event, in what view, and why. Pure logic, no I/O.

Modules: ``model`` (the YAML file and loading it), ``facts`` (what an event tells the policy),
``rules`` (matching), ``guards`` (statutory checks no rule overrides), ``decide`` (the decision),
``fields`` and ``views`` (schema-driven redaction), ``check`` (consistency problems) and
``explain`` (the human-readable decision table).
"""

from broker.policy.check import check_policy, load_checked_policy
from broker.policy.decide import Decision, Outcome, PartnerDecision, decide
from broker.policy.facts import EventFacts, extract_facts
from broker.policy.fields import FieldInfo, load_record_fields, schema_fields
from broker.policy.model import LoadedPolicy, Policy, load_policy, parse_policy
from broker.policy.views import ViewPlan, ViewResult, apply_view, plan_view

__all__ = [
    "Decision",
    "EventFacts",
    "FieldInfo",
    "LoadedPolicy",
    "Outcome",
    "PartnerDecision",
    "Policy",
    "ViewPlan",
    "ViewResult",
    "apply_view",
    "check_policy",
    "decide",
    "extract_facts",
    "load_checked_policy",
    "load_policy",
    "load_record_fields",
    "parse_policy",
    "plan_view",
    "schema_fields",
]
