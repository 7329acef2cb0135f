"""The case update document police and CPS exchange, keyed by URN.

Police send arrests, charges and files submitted for a charging decision (as JSON); the CPS
receives them as XML and sends charging decisions and hearing outcomes back in the same XML
shape. Both formats validate into :class:`CaseUpdateDocument`, so the checks (URN form,
Modern Slavery Act offence codes, plea and remand codes) are written once.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, StringConstraints, model_validator

from adapters.markings import police_markings
from adapters.protocol import CanonicalEvent
from adapters.vocab import Gender, Handling, LongText, Native, OffenceCode, Reference, Text, Urn
from broker.types import Subject

UpdateKind = Literal["arrest", "charge", "file_submitted", "charging_decision", "hearing_outcome"]
ModeOfTrial = Literal["SUM", "IND", "EW"]
CourtType = Literal["MCA", "CC", "COA"]
Plea = Literal["G", "NG", "NONE", "ADM", "DEN"]
Remand = Literal["UB", "CB", "PR", "PB"]
CodeTest = Literal["full_code", "threshold"]
DecisionOutcome = Literal["charge", "nfa", "out_of_court", "further_evidence"]
CaseFileForm = Literal["MG3", "MG5", "MG6C", "MG6D"]
MonitoringCode = Annotated[
    str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Z]{4}$")
]

EVENT_TYPES: dict[str, str] = {
    "arrest": "case.arrest",
    "charge": "case.charge",
    "file_submitted": "case.file_submitted",
    "charging_decision": "case.charging_decision",
    "hearing_outcome": "case.hearing_outcome",
}
"""Event type of each kind of case update."""


class Charge(Native):
    """One charge: a Modern Slavery Act offence with its particulars."""

    offence_code: OffenceCode
    wording: LongText
    date_from: date
    date_to: date | None = None
    location: Text | None = None
    victim_index: int | None = Field(default=None, ge=1)
    mode_of_trial: ModeOfTrial

    @model_validator(mode="after")
    def _dates_in_order(self) -> Charge:
        if self.date_to is not None and self.date_to < self.date_from:
            raise ValueError("date_to must not be before date_from")
        return self


class Defendant(Native):
    """A suspect or defendant; ``index`` numbers them within the case."""

    index: int = Field(ge=1)
    forename: Text
    surname: Text
    date_of_birth: date | None = None
    gender: Gender
    arrest_date: date | None = None
    arrest_summons_number: Text | None = None
    not_yet_charged: bool = True
    charges: Annotated[tuple[Charge, ...], Field(max_length=50)] = ()


class Hearing(Native):
    """The next (or the reported) hearing."""

    court_type: CourtType
    court_name: Text
    date: date


class ChargingDecision(Native):
    """A CPS charging decision under the Code for Crown Prosecutors."""

    test: CodeTest
    outcome: DecisionOutcome
    decided_on: date
    reasons: LongText | None = None


class HearingOutcome(Native):
    """What happened to one defendant at a hearing."""

    defendant_index: int = Field(ge=1)
    plea: Plea
    remand: Remand
    court: CourtType
    next_hearing_date: date | None = None


class CaseUpdateDocument(Native):
    """One case update, of the kind named in ``update``."""

    update: UpdateKind
    urn: Urn
    update_id: Reference
    occurred_at: AwareDatetime
    area: Text | None = None
    unit: Text | None = None
    operation_name: Text | None = None
    officer_in_case: Text | None = None
    prosecutor: Text | None = None
    monitoring_codes: Annotated[tuple[MonitoringCode, ...], Field(max_length=20)] = ()
    defendants: Annotated[tuple[Defendant, ...], Field(max_length=50)] = ()
    files: Annotated[tuple[CaseFileForm, ...], Field(max_length=10)] = ()
    hearing: Hearing | None = None
    charging_decision: ChargingDecision | None = None
    hearing_outcomes: Annotated[tuple[HearingOutcome, ...], Field(max_length=50)] = ()
    handling: Handling = Handling()

    @model_validator(mode="after")
    def _parts_for_kind(self) -> CaseUpdateDocument:
        problems = _missing_parts(self)
        if problems:
            raise ValueError("; ".join(problems))
        indexes = [d.index for d in self.defendants]
        if len(set(indexes)) != len(indexes):
            raise ValueError("defendants must each have a different index")
        return self


def _missing_parts(doc: CaseUpdateDocument) -> list[str]:
    kind = doc.update
    out: list[str] = []
    if kind in ("arrest", "charge", "file_submitted") and not doc.defendants:
        out.append(f"defendants must list at least one person for an {kind} update")
    if kind == "arrest" and any(d.arrest_date is None for d in doc.defendants):
        out.append("every defendant needs an arrest_date in an arrest update")
    if kind == "charge" and not any(d.charges for d in doc.defendants):
        out.append("at least one defendant must have charges in a charge update")
    if kind == "file_submitted" and "MG3" not in doc.files:
        out.append("files must include MG3 (report for a charging decision)")
    if kind == "charging_decision" and doc.charging_decision is None:
        out.append("charging_decision is required for a charging_decision update")
    if kind == "hearing_outcome" and (not doc.hearing_outcomes or doc.hearing is None):
        out.append("hearing and hearing_outcomes are required for a hearing_outcome update")
    return out


CASE_RECORD = "CaseUpdate"
"""Avro record name of the case update payload."""


def case_event(doc: CaseUpdateDocument) -> CanonicalEvent:
    """A case update as a ``case.<kind>`` event keyed by URN (so a case stays in order)."""
    payload: dict[str, Any] = doc.model_dump(mode="json", exclude={"handling"})
    return CanonicalEvent(
        event_type=EVENT_TYPES[doc.update],
        subject=Subject(doc.urn),
        reference=f"{doc.urn}/{doc.update_id}",
        record_name=CASE_RECORD,
        markings=police_markings(doc.handling),
        payload=payload,
        occurred_at=doc.occurred_at,
    )
