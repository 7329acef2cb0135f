"""Explain a decision: decide an event and show, per partner, what its view withholds.

Pure: the caller reads the event and supplies the payload record's fields (through
:class:`FieldCatalogue`, which the schema catalogue implements); the command line renders it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from broker.events.fields import FieldInfo
from broker.policy.decide import Decision, decide
from broker.policy.facts import EventFacts, extract_facts
from broker.policy.model import LoadedPolicy
from broker.policy.views import apply_view
from broker.types import Outcome


class FieldCatalogue(Protocol):
    """Where the policy reads a payload record's fields: the schema catalogue's interface."""

    def fields(self, name: str) -> tuple[FieldInfo, ...]:
        """Every field of the current version of the record ``name``."""
        ...


@dataclass(frozen=True)
class EventInput:
    """An event as explain reads it: header, decoded payload and the payload record's name."""

    header: Any
    payload: dict[str, Any]
    record: str


@dataclass(frozen=True)
class Explanation:
    """A decision plus, per delivered or held partner, the paths its view actually withheld."""

    facts: EventFacts
    decision: Decision
    withheld_paths: Mapping[str, tuple[str, ...]]


def explain(
    loaded: LoadedPolicy, event: EventInput, now: datetime, catalogue: FieldCatalogue
) -> Explanation:
    """Decide ``event`` and apply each granted view to its payload."""
    fields = catalogue.fields(event.record)
    facts = extract_facts(event.header, event.payload, fields)
    decision = decide(loaded, facts, now)
    withheld: dict[str, tuple[str, ...]] = {}
    for d in decision.partners:
        if d.plan is not None and d.outcome is not Outcome.WITHHOLD:
            result = apply_view(event.payload, d.plan)
            withheld[d.partner] = result.removed + result.masked
    return Explanation(facts, decision, withheld)


__all__ = ["EventInput", "Explanation", "FieldCatalogue", "explain"]
