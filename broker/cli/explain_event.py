"""Reading an event for ``msht policy explain`` and rendering the explanation as a table.

An event is given either as JSON (``{"header": {...}, "payload": {...}}``, optionally with
``"payload_record"``) or as an encoded envelope file as the exchange carries it.

Explain answers "what would the policy do with this event", not "is this event genuine":
signatures are neither required nor checked here. The router verifies every signature
against the trust store before it decides; explaining an unsigned or forged envelope shows
what the policy would have done had it been genuine.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.table import Table

from broker.errors import CodecError, PolicyDecisionError, UnknownSchemaError
from broker.events.envelope import decode_envelope, decode_payload
from broker.events.schemas import payload_record_for
from broker.policy.decide import PartnerDecision
from broker.policy.explain import EventInput, Explanation
from broker.policy.lawful import BASIS_CITATIONS, TRANSFER_CITATIONS
from broker.types import Outcome


def load_event(path: Path) -> EventInput:
    """Read an event file (JSON or encoded envelope); raise the project's errors on bad input."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PolicyDecisionError(f"cannot read event file {path}: {exc.strerror}") from exc
    if data.lstrip()[:1] == b"{":
        return _from_json(data, path)
    return decode_event(data)


def _from_json(data: bytes, path: Path) -> EventInput:
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise PolicyDecisionError(f"{path}: not valid JSON ({exc})") from exc
    header, payload = doc.get("header"), doc.get("payload")
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise PolicyDecisionError(f"{path}: needs 'header' and 'payload' objects")
    record = doc.get("payload_record")
    if not record:
        try:
            record = payload_record_for(str(header.get("event_type", "")))
        except UnknownSchemaError as exc:
            raise PolicyDecisionError(f"header.event_type: {exc}") from exc
    return EventInput(header, payload, str(record))


def decode_event(data: bytes) -> EventInput:
    """Header, payload dict and payload record name of a single-object-encoded envelope.

    The payload is read with its writer schema into the newest version of its record, as
    the router reads it. A truncated, foreign or corrupt envelope raises
    :class:`PolicyDecisionError` carrying the codec's reason (the event is not quoted).
    """
    try:
        envelope = decode_envelope(data)
        payload = decode_payload(envelope)
    except CodecError as exc:
        raise PolicyDecisionError(f"not a readable encoded event: {exc}") from exc
    return EventInput(
        header=envelope.header,
        payload=payload,
        record=envelope.header.payload_schema_name,
    )


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
    for column in (
        "partner",
        "outcome",
        "decided by",
        "view",
        "withheld fields",
        "agreement, purpose, basis",
        "why",
    ):
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
            _lawful(p),
            p.reason,
        )
    return table


def _lawful(p: PartnerDecision) -> str:
    """Agreement, purposes, lawful basis (with its statute) and any transfer basis."""
    if p.agreement is None:
        return "-"
    out = f"{p.agreement}\n" + ", ".join(x.value.replace("_", " ") for x in p.purposes)
    if p.lawful_basis is not None:
        out += f"\n{BASIS_CITATIONS[p.lawful_basis]}"
    if p.basis is not None:
        out += f"\ntransfer: {TRANSFER_CITATIONS[p.basis]}"
    return out
