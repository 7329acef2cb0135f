"""``msht policy explain``: read an event, decide it, and show every partner's outcome.

An event is given either as JSON (``{"header": {...}, "payload": {...}}``, optionally with
``"payload_record"``) or as an encoded envelope file as the exchange carries it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.table import Table

from broker.errors import PolicyDecisionError
from broker.policy.decide import Decision, Outcome, decide
from broker.policy.facts import EventFacts, extract_facts
from broker.policy.fields import FieldInfo, load_record_fields
from broker.policy.model import LoadedPolicy
from broker.policy.views import apply_view

PAYLOAD_RECORDS: Mapping[str, str] = {
    "referral": "Referral",
    "case": "CaseUpdate",
    "alert": "Alert",
}
"""Payload record name by event family (the part of the event type before the dot)."""


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


def payload_record_for(event_type: str) -> str:
    """The payload record name for an event type (``referral.nrm`` -> ``Referral``)."""
    family = event_type.split(".", 1)[0]
    try:
        return PAYLOAD_RECORDS[family]
    except KeyError:
        raise PolicyDecisionError(f"header.event_type: unknown event family {family!r}") from None


def load_event(path: Path) -> EventInput:
    """Read an event file (JSON or encoded envelope); raise the project's errors on bad input."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PolicyDecisionError(f"cannot read event file {path}: {exc.strerror}") from exc
    if data.lstrip()[:1] == b"{":
        return _from_json(data, path)
    return _from_envelope(data)


def _from_json(data: bytes, path: Path) -> EventInput:
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise PolicyDecisionError(f"{path}: not valid JSON ({exc})") from exc
    header, payload = doc.get("header"), doc.get("payload")
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise PolicyDecisionError(f"{path}: needs 'header' and 'payload' objects")
    record = doc.get("payload_record") or payload_record_for(str(header.get("event_type", "")))
    return EventInput(header, payload, str(record))


def _from_envelope(data: bytes) -> EventInput:
    # Imported here so the policy package stays usable without the codec (pure logic).
    from broker.policy import envelope_bridge

    return envelope_bridge.decode_event(data)


def explain(
    loaded: LoadedPolicy, event: EventInput, now: datetime, schema_dir: Path | None = None
) -> Explanation:
    """Decide ``event`` and apply each granted view to its payload.

    ``schema_dir`` holds the ``.avsc`` files (default: the package's own schemas).
    """
    fields: Sequence[FieldInfo] = load_record_fields(event.record, schema_dir)
    facts = extract_facts(event.header, event.payload, fields)
    decision = decide(loaded, facts, now)
    withheld: dict[str, tuple[str, ...]] = {}
    for d in decision.partners:
        if d.plan is not None and d.outcome is not Outcome.WITHHOLD:
            result = apply_view(event.payload, d.plan)
            withheld[d.partner] = result.removed + result.masked
    return Explanation(facts, decision, withheld)


_STYLE = {Outcome.DELIVER: "green", Outcome.WITHHOLD: "red", Outcome.HELD: "yellow"}


def render(explanation: Explanation) -> Table:
    """A table with one row per partner: outcome, deciding rule or guard, view, basis, fields."""
    d, f = explanation.decision, explanation.facts
    table = Table(
        title=(
            f"event {d.event_id} ({f.event_type} from {f.source}, {f.classification.value}, "
            f"TLP:{f.tlp.value}) under policy {d.policy_version[:19]}"
        ),
        show_lines=True,
    )
    for column in ("partner", "outcome", "decided by", "view", "withheld fields", "basis", "why"):
        table.add_column(column, overflow="fold")
    for p in d.partners:
        fields = explanation.withheld_paths.get(p.partner)
        decided = p.decided_by
        if p.rule and p.rule != p.decided_by:
            decided += f"\n(rule {p.rule})"
        others = [g for g in p.guards if g != p.decided_by]
        if others:
            decided += "\n+ " + "\n+ ".join(others)
        table.add_row(
            p.partner,
            f"[{_STYLE[p.outcome]}]{p.outcome.value}[/]",
            decided,
            p.view or "-",
            (", ".join(fields) if fields else ("none" if fields is not None else "-"))
            + (f"\nsealed: {', '.join(p.seals)}" if p.seals else ""),
            p.basis.value if p.basis else "-",
            p.reason,
        )
    return table


__all__ = [
    "EventInput",
    "Explanation",
    "explain",
    "load_event",
    "payload_record_for",
    "render",
]
