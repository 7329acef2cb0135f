"""The case update document police and CPS exchange, keyed by URN.

Police send arrests, charges and files submitted for a charging decision (as JSON); the CPS
receives them as XML and sends charging decisions and hearing outcomes back in the same XML
shape. Both formats validate into :class:`CaseUpdateDocument`, so the checks (URN form,
Modern Slavery Act offence codes, plea and remand codes) are written once.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, StringConstraints, model_validator

from adapters.native.vocab import (
    AgeGroup,
    Country,
    ExploitationType,
    Gender,
    Handling,
    LongText,
    Native,
    OffenceCode,
    Reference,
    Text,
    Urn,
)

UpdateKind = Literal["arrest", "charge", "file_submitted", "charging_decision", "hearing_outcome"]
ModeOfTrial = Literal["SUM", "IND", "EW"]
CourtType = Literal["MCA", "CC", "COA"]
Plea = Literal["G", "NG", "NONE", "ADM", "DEN"]
Remand = Literal["UB", "CB", "PR", "PB"]
CodeTest = Literal["full_code", "threshold"]
DecisionOutcome = Literal["charge", "nfa", "out_of_court", "further_evidence"]
CaseFileForm = Literal[
    "MG3", "MG4", "MG5", "MG6", "MG6B", "MG6C", "MG6D", "MG6E", "MG11", "MG15", "MG_OTHER"
]  # fmt: skip
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
    plea: Plea | None = None

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
    remand: Remand | None = None
    charges: Annotated[tuple[Charge, ...], Field(max_length=50)] = ()


class CaseVictim(Native):
    """A victim in the case; ``index`` is what a charge's ``victim_index`` refers to."""

    index: int = Field(ge=1)
    forename: Text | None = None
    surname: Text | None = None
    date_of_birth: date | None = None
    gender: Gender = "unknown"
    nationality: Country | None = None
    age_group: AgeGroup
    consent: bool | None = None
    referral_id: Reference | None = None


class ChargingDecision(Native):
    """A CPS charging decision under the Code for Crown Prosecutors."""

    test: CodeTest
    outcome: DecisionOutcome
    decided_on: date
    reasons: LongText | None = None


class HearingOutcome(Native):
    """What happened at a hearing (for one defendant when ``defendant_index`` is given)."""

    court_type: CourtType
    heard_on: date
    defendant_index: int | None = Field(default=None, ge=1)
    plea: Plea | None = None
    remand: Remand | None = None
    next_hearing_date: date | None = None
    result_text: LongText | None = None


class CaseUpdateDocument(Native):
    """One case update, of the kind named in ``update``."""

    update: UpdateKind
    urn: Urn
    occurred_at: AwareDatetime
    area: Text | None = None
    unit: Text | None = None
    operation_name: Text | None = None
    court: Text | None = None
    hearing_date: date | None = None
    officer_in_case: Text | None = None
    prosecutor: Text | None = None
    monitoring_codes: Annotated[tuple[MonitoringCode, ...], Field(max_length=20)] = ()
    exploitation_types: Annotated[tuple[ExploitationType, ...], Field(max_length=6)] = ()
    countries: Annotated[tuple[Country, ...], Field(max_length=20)] = ()
    victims: Annotated[tuple[CaseVictim, ...], Field(max_length=50)] = ()
    defendants: Annotated[tuple[Defendant, ...], Field(max_length=50)] = ()
    files: Annotated[tuple[CaseFileForm, ...], Field(max_length=11)] = ()
    charging_decision: ChargingDecision | None = None
    hearing_outcome: HearingOutcome | None = None
    handling: Handling = Handling()

    @model_validator(mode="after")
    def _parts_for_kind(self) -> CaseUpdateDocument:
        problems = _missing_parts(self)
        if problems:
            raise ValueError("; ".join(problems))
        for name, items in (("defendants", self.defendants), ("victims", self.victims)):
            indexes = [i.index for i in items]
            if len(set(indexes)) != len(indexes):
                raise ValueError(f"{name} must each have a different index")
        return self

    @property
    def reference(self) -> str:
        """The update's own reference: URN, kind and time (what makes it this update)."""
        return f"{self.urn}/{self.update}/{self.occurred_at.isoformat()}"


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
    if kind == "hearing_outcome" and doc.hearing_outcome is None:
        out.append("hearing_outcome is required for a hearing_outcome update")
    return out
