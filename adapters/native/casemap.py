"""Case updates ↔ the canonical ``CaseUpdate`` payload (schemas/CaseUpdate.v1.avsc).

Shared by the police (case JSON) and CPS (case XML) adapters: both formats carry the same
document. The update's time travels in the event header (``occurred_at``), the handling
in the markings; everything else has a place in the payload.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from adapters.native.case import EVENT_TYPES, CaseUpdateDocument, Charge, Defendant
from adapters.native.handling import handling_from_markings, police_markings
from adapters.native.values import compact, day_start, day_text, lower, moment_text
from adapters.protocol import CanonicalEvent
from broker.types import Subject

CASE_RECORD = "CaseUpdate"
"""Avro record name of the case update payload."""

_TESTS = {"full_code": "FULL_CODE_TEST", "threshold": "THRESHOLD_TEST"}
_OUTCOMES = {
    "charge": "CHARGE",
    "nfa": "NO_FURTHER_ACTION",
    "out_of_court": "OUT_OF_COURT_DISPOSAL",
    "further_evidence": "FURTHER_EVIDENCE_REQUESTED",
}


def _person(
    forename: Any, surname: Any, dob: Any, gender: str, nationality: Any = None
) -> dict[str, Any]:
    return {
        "forename": forename,
        "surname": surname,
        "aliases": [],
        "date_of_birth": dob.isoformat() if dob is not None else None,
        "gender": gender.upper(),
        "nationality": nationality,
        "second_nationality": None,
        "contact_details": [],
        "addresses": [],
        "identity_documents": [],
        "pnc_id": None,
    }


def _charge(c: Charge) -> dict[str, Any]:
    return {
        "offence_code": c.offence_code,
        "wording": c.wording,
        "date_from": day_start(c.date_from),
        "date_to": day_start(c.date_to),
        "location": None
        if c.location is None
        else {"town": c.location, "country": None, "address": None},
        "victim_index": c.victim_index,
        "mode_of_trial": c.mode_of_trial,
        "plea": c.plea,
    }


def _defendant(d: Defendant) -> dict[str, Any]:
    return {
        "index": d.index,
        "person": _person(d.forename, d.surname, d.date_of_birth, d.gender),
        "arrest_date": day_start(d.arrest_date),
        "arrest_summons_number": d.arrest_summons_number,
        "not_yet_charged": d.not_yet_charged,
        "remand": d.remand,
        "charges": [_charge(c) for c in d.charges],
    }


def case_payload(doc: CaseUpdateDocument) -> dict[str, Any]:
    """The canonical payload of ``doc``."""
    cd, ho = doc.charging_decision, doc.hearing_outcome
    return {
        "urn": doc.urn,
        "update_type": doc.update.upper(),
        "area": doc.area,
        "unit": doc.unit,
        "operation_name": doc.operation_name,
        "court": doc.court,
        "hearing_date": day_start(doc.hearing_date),
        "monitoring_codes": list(doc.monitoring_codes),
        "prosecutor": doc.prosecutor,
        "officer_in_case": doc.officer_in_case,
        "exploitation_types": [t.upper() for t in doc.exploitation_types],
        "countries": list(doc.countries),
        "victims": [
            {
                "index": v.index,
                "person": _person(v.forename, v.surname, v.date_of_birth, v.gender, v.nationality),
                "age_group": v.age_group.upper(),
                "consent": v.consent,
                "referral_id": v.referral_id,
            }
            for v in doc.victims
        ],
        "defendants": [_defendant(d) for d in doc.defendants],
        "witnesses": [],
        "file_submission": (
            {"forms": list(doc.files), "submitted_at": doc.occurred_at} if doc.files else None
        ),
        "charging_decision": None if cd is None else {
            "test": _TESTS[cd.test],
            "outcome": _OUTCOMES[cd.outcome],
            "decided_at": day_start(cd.decided_on),
            "reasons": cd.reasons,
        },
        "hearing_outcome": None if ho is None else {
            "court_type": ho.court_type,
            "heard_at": day_start(ho.heard_on),
            "defendant_index": ho.defendant_index,
            "plea": ho.plea,
            "remand": ho.remand,
            "next_hearing_at": day_start(ho.next_hearing_date),
            "result_text": ho.result_text,
        },
    }  # fmt: skip


def case_event(doc: CaseUpdateDocument) -> CanonicalEvent:
    """``doc`` as a ``case.<kind>`` event keyed by URN (so a case stays in order)."""
    return CanonicalEvent(
        event_type=EVENT_TYPES[doc.update],
        subject=Subject(doc.urn),
        reference=doc.reference,
        record_name=CASE_RECORD,
        markings=police_markings(doc.handling),
        payload=case_payload(doc),
        occurred_at=doc.occurred_at,
    )


def _native_person(p: Mapping[str, Any] | None) -> dict[str, Any]:
    p = p or {}
    return {
        "forename": p.get("forename"),
        "surname": p.get("surname"),
        "date_of_birth": p.get("date_of_birth"),
        "gender": lower(p.get("gender")),
    }


def _native_charge(c: Mapping[str, Any]) -> dict[str, Any]:
    loc = c.get("location") or {}
    return {
        "offence_code": c.get("offence_code"),
        "wording": c.get("wording"),
        "date_from": day_text(c.get("date_from")),
        "date_to": day_text(c.get("date_to")),
        "location": loc.get("town"),
        "victim_index": c.get("victim_index"),
        "mode_of_trial": c.get("mode_of_trial"),
        "plea": c.get("plea"),
    }


def case_native(
    payload: Mapping[str, Any], markings: Mapping[str, Any], occurred_at: datetime | None
) -> dict[str, Any]:
    """The native case document (JSON-ready, withheld fields absent) of a delivered event."""
    cd = payload.get("charging_decision")
    ho = payload.get("hearing_outcome")
    files = payload.get("file_submission")
    victims = [
        {
            "index": v.get("index"),
            **_native_person(v.get("person")),
            "nationality": (v.get("person") or {}).get("nationality"),
            "age_group": lower(v.get("age_group")),
            "consent": v.get("consent"),
            "referral_id": v.get("referral_id"),
        }
        for v in payload.get("victims") or []
    ]
    defendants = [
        {
            "index": d.get("index"),
            **_native_person(d.get("person")),
            "arrest_date": day_text(d.get("arrest_date")),
            "arrest_summons_number": d.get("arrest_summons_number"),
            "not_yet_charged": d.get("not_yet_charged"),
            "remand": d.get("remand"),
            "charges": [_native_charge(c) for c in d.get("charges") or []],
        }
        for d in payload.get("defendants") or []
    ]
    doc = {
        "update": lower(payload.get("update_type")),
        "urn": payload.get("urn"),
        "occurred_at": moment_text(occurred_at),
        "area": payload.get("area"),
        "unit": payload.get("unit"),
        "operation_name": payload.get("operation_name"),
        "court": payload.get("court"),
        "hearing_date": day_text(payload.get("hearing_date")),
        "officer_in_case": payload.get("officer_in_case"),
        "prosecutor": payload.get("prosecutor"),
        "monitoring_codes": list(payload.get("monitoring_codes") or []),
        "exploitation_types": [lower(t) for t in payload.get("exploitation_types") or []],
        "countries": list(payload.get("countries") or []),
        "victims": victims,
        "defendants": defendants,
        "files": list(files.get("forms") or []) if files else [],
        "charging_decision": None if not cd else {
            "test": _key_of(_TESTS, cd.get("test")),
            "outcome": _key_of(_OUTCOMES, cd.get("outcome")),
            "decided_on": day_text(cd.get("decided_at")),
            "reasons": cd.get("reasons"),
        },
        "hearing_outcome": None if not ho else {
            "court_type": ho.get("court_type"),
            "heard_on": day_text(ho.get("heard_at")),
            "defendant_index": ho.get("defendant_index"),
            "plea": ho.get("plea"),
            "remand": ho.get("remand"),
            "next_hearing_date": day_text(ho.get("next_hearing_at")),
            "result_text": ho.get("result_text"),
        },
        "handling": handling_from_markings(markings),
    }  # fmt: skip
    result: dict[str, Any] = compact(doc)
    return result


def _key_of(table: Mapping[str, str], symbol: Any) -> str | None:
    return next(
        (k for k, v in table.items() if v == symbol), None if symbol is None else str(symbol)
    )
