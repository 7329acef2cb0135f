"""The routing policy: who receives each event, in what view, and why.

Pure decision logic: no Kafka, no network, no terminal output. The one file read is
:func:`load_policy` (and :func:`load_checked_policy` over it), which turns the operator's YAML
file into a :class:`LoadedPolicy`; everything else takes values. Fields come from the schema
catalogue through :class:`broker.policy.explain.FieldCatalogue` or as
:class:`~broker.events.fields.FieldInfo` tuples.

Modules: ``model`` (the YAML file and loading it), ``facts`` (what an event tells the policy),
``rules`` (matching), ``guards`` (statutory checks no rule overrides), ``decide`` (the decision),
``views`` (schema-driven redaction), ``check`` (consistency problems) and ``explain`` (a
decision with what each view withholds; rendered by the command line).
"""

from broker.events.fields import FieldInfo, schema_fields
from broker.policy.check import check_policy, load_checked_policy
from broker.policy.decide import Decision, PartnerDecision, decide
from broker.policy.facts import EventFacts, extract_facts
from broker.policy.model import LoadedPolicy, Policy, load_policy, parse_policy
from broker.policy.views import ViewPlan, ViewResult, apply_view, plan_view
from broker.types import Outcome

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
    "parse_policy",
    "plan_view",
    "schema_fields",
]
