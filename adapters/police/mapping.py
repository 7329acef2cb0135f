"""Police referrals ↔ the canonical ``Referral`` payload (schemas/Referral.v2.avsc).

An NRM referral fills every group of the NRM form; an anonymous Duty to Notify report
fills only the non-identifying ones (gender, nationality, exploitation, where, force,
responding organisation), its victim an adult who did not consent. The document's
``handling`` becomes the markings. Case updates map through :mod:`adapters.native.casemap`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.native.casemap import case_event
from adapters.native.handling import handling_from_markings, police_markings
from adapters.native.values import compact, lower, upper
from adapters.police.models import DutyToNotify, Exploitation, NrmReferral
from adapters.protocol import CanonicalEvent
from broker.types import Subject

REFERRAL_RECORD = "Referral"
"""Avro record name of the referral payload."""

FLAG_SYMBOLS: dict[str, str] = {
    "forced_to_work_for_nothing": "FORCED_WORK_UNPAID",
    "wages_taken": "WAGES_TAKEN",
    "forced_fraud": "FORCED_FRAUD",
    "prostitution": "PROSTITUTION",
    "child_sexual_exploitation": "CHILD_SEXUAL_EXPLOITATION",
    "sexually_assaulted": "SEXUALLY_ASSAULTED",
    "forced_criminality": "FORCED_CRIME",
    "organs_removed": "ORGANS_REMOVED",
    "domestic_servitude": "DOMESTIC_SERVITUDE",
    "other": "OTHER",
}
"""NRM form exploitation question → ``ExploitationFlag`` symbol."""

_CATEGORY: dict[str, str] = {
    "forced_to_work_for_nothing": "LABOUR",
    "wages_taken": "LABOUR",
    "forced_fraud": "CRIMINAL",
    "forced_criminality": "CRIMINAL",
    "prostitution": "SEXUAL",
    "child_sexual_exploitation": "SEXUAL",
    "sexually_assaulted": "SEXUAL",
    "organs_removed": "ORGAN_HARVESTING",
    "domestic_servitude": "DOMESTIC_SERVITUDE",
    "other": "OTHER",
}


def _flags(e: Exploitation) -> tuple[list[str], list[str]]:
    """The flags answered yes, and the exploitation categories they amount to."""
    yes = [name for name in FLAG_SYMBOLS if getattr(e, name)]
    categories: list[str] = []
    for name in yes:
        if _CATEGORY[name] not in categories:
            categories.append(_CATEGORY[name])
    return [FLAG_SYMBOLS[n] for n in yes], categories


def _empty_person(gender: str, nationality: str | None) -> dict[str, Any]:
    return {
        "forename": None, "surname": None, "aliases": [], "date_of_birth": None,
        "gender": gender.upper(), "nationality": nationality, "second_nationality": None,
        "contact_details": [], "addresses": [], "identity_documents": [], "pnc_id": None,
    }  # fmt: skip


def _base(kind: str, ref: str, nation: str, e: Exploitation) -> dict[str, Any]:
    flags, categories = _flags(e)
    return {
        "referral_id": ref, "kind": kind, "nation": nation,
        "age_group": "ADULT", "age_group_during_exploitation": None,
        "consent": None, "consent_refusal_reason": None, "needs_support": None,
        "cooperates_with_police": None, "has_dependants": None, "interpreter_needed": None,
        "language": None, "home_office_reference": None,
        "exploitation_types": categories, "exploitation_flags": flags,
        "exploitation_other": e.other_details, "exploitation_in": None,
        "exploitation_towns": [], "exploitation_countries": [], "exploitation_addresses": [],
        "account": None, "exploitation_dates": None, "last_contact_with_exploiters": None,
        "exploiters": [], "other_potential_victims": None, "risk_of_further_exploitation": None,
        "indicators": [], "reported_to_police": None, "police_force": None,
        "crime_reference": None, "first_responder": None, "duplicate_of": None,
    }  # fmt: skip


def referral_payload(doc: NrmReferral) -> dict[str, Any]:
    """The canonical payload of an NRM referral."""
    ref = str(doc.routing.external_id)
    body = _base("NRM", ref, doc.routing.country, doc.exploitation)
    i, loc, x, fr = doc.identity, doc.location, doc.exploiters, doc.first_responder
    victim = _empty_person(i.gender, i.nationality)
    victim.update(
        forename=i.forename, surname=i.surname, aliases=list(i.aliases),
        date_of_birth=i.date_of_birth.isoformat() if i.date_of_birth else None,
        second_nationality=i.second_nationality,
        contact_details=[
            {"kind": c.kind.upper(), "value": c.value, "safe_to_contact": c.safe_to_contact}
            for c in i.contacts
        ],
    )  # fmt: skip
    body.update(
        age_group=doc.age.now.upper(),
        age_group_during_exploitation=doc.age.during_exploitation.upper(),
        consent=doc.consent.wants_nrm,
        consent_refusal_reason=doc.consent.reason_not,
        needs_support=doc.consent.needs_support,
        cooperates_with_police=doc.consent.willing_to_cooperate,
        victim=victim,
        has_dependants=i.has_dependants,
        interpreter_needed=i.interpreter_needed,
        language=i.language,
        home_office_reference=i.home_office_reference,
        exploitation_in=loc.where,
        exploitation_towns=list(loc.uk_towns),
        exploitation_countries=list(loc.countries),
        exploitation_addresses=list(loc.addresses),
        account=doc.narrative.account,
        exploitation_dates=doc.narrative.exploitation_dates,
        last_contact_with_exploiters=upper(doc.narrative.last_contact),
        exploiters=(
            [{"details": x.details, "in_uk": x.in_uk}]
            if x.details is not None or x.in_uk is not None
            else []
        ),
        other_potential_victims=x.other_victims,
        risk_of_further_exploitation=x.risk_of_further_exploitation,
        indicators=list(x.indicators),
        reported_to_police=doc.police.reported,
        police_force=doc.police.force,
        crime_reference=doc.police.crime_reference,
        first_responder=fr.model_dump(),
    )
    return body


def dtn_payload(doc: DutyToNotify) -> dict[str, Any]:
    """The canonical payload of an anonymous Duty to Notify report (an adult, no consent)."""
    body = _base("DTN", str(doc.routing.external_id), doc.routing.country, doc.exploitation)
    body.update(
        consent=False,
        victim=_empty_person(doc.identity.gender, doc.identity.nationality),
        exploitation_in=doc.location.where,
        exploitation_countries=list(doc.location.countries),
        police_force=doc.police.force,
        first_responder={
            "organisation": doc.first_responder.organisation, "name": None, "role": None,
            "phone": None, "email": None, "local_authority_contact": None,
        },
    )  # fmt: skip
    return body


def referral_event(doc: NrmReferral) -> CanonicalEvent:
    """An NRM referral as a ``referral.nrm`` event, keyed by its external id."""
    ref = str(doc.routing.external_id)
    return CanonicalEvent(
        event_type="referral.nrm",
        subject=Subject(ref),
        reference=ref,
        record_name=REFERRAL_RECORD,
        markings=police_markings(doc.handling),
        payload=referral_payload(doc),
    )


def dtn_event(doc: DutyToNotify) -> CanonicalEvent:
    """An anonymous Duty to Notify report as a ``referral.dtn`` event."""
    ref = str(doc.routing.external_id)
    return CanonicalEvent(
        event_type="referral.dtn",
        subject=Subject(ref),
        reference=ref,
        record_name=REFERRAL_RECORD,
        markings=police_markings(doc.handling),
        payload=dtn_payload(doc),
    )


def _native_exploitation(p: Mapping[str, Any]) -> dict[str, Any]:
    symbols = set(p.get("exploitation_flags") or [])
    out: dict[str, Any] = {name: True for name, sym in FLAG_SYMBOLS.items() if sym in symbols}
    out["other_details"] = p.get("exploitation_other")
    return out


def referral_native(payload: Mapping[str, Any], markings: Mapping[str, Any]) -> dict[str, Any]:
    """The native NRM or DtN document of a delivered referral (withheld fields absent)."""
    p = payload
    victim = p.get("victim") or {}
    routing = {
        "kind": p.get("kind"),
        "external_id": p.get("referral_id"),
        "country": p.get("nation"),
    }
    handling = handling_from_markings(markings)
    fr = p.get("first_responder") or {}
    if p.get("kind") == "DTN":
        dtn = {
            "routing": routing,
            "identity": {
                "gender": lower(victim.get("gender")),
                "nationality": victim.get("nationality"),
            },
            "exploitation": _native_exploitation(p),
            "location": {
                "where": p.get("exploitation_in"),
                "countries": p.get("exploitation_countries"),
            },
            "police": {"force": p.get("police_force")},
            "first_responder": {"organisation": fr.get("organisation")},
            "handling": handling,
        }  # fmt: skip
        out: dict[str, Any] = compact(dtn)
        return out
    exploiters = (p.get("exploiters") or [{}])[0]
    nrm = {
        "routing": routing,
        "age": {
            "now": lower(p.get("age_group")),
            "during_exploitation": lower(p.get("age_group_during_exploitation")),
        },
        "consent": {
            "wants_nrm": p.get("consent"),
            "reason_not": p.get("consent_refusal_reason"),
            "needs_support": p.get("needs_support"),
            "willing_to_cooperate": p.get("cooperates_with_police"),
        },
        "identity": {
            "forename": victim.get("forename"),
            "surname": victim.get("surname"),
            "aliases": victim.get("aliases"),
            "date_of_birth": victim.get("date_of_birth"),
            "gender": lower(victim.get("gender")),
            "nationality": victim.get("nationality"),
            "second_nationality": victim.get("second_nationality"),
            "has_dependants": p.get("has_dependants"),
            "interpreter_needed": p.get("interpreter_needed"),
            "language": p.get("language"),
            "contacts": [
                {"kind": lower(c.get("kind")), "value": c.get("value"),
                 "safe_to_contact": c.get("safe_to_contact")}
                for c in victim.get("contact_details") or []
            ],
            "home_office_reference": p.get("home_office_reference"),
        },
        "exploitation": _native_exploitation(p),
        "location": {
            "where": p.get("exploitation_in"),
            "uk_towns": p.get("exploitation_towns"),
            "countries": p.get("exploitation_countries"),
            "addresses": p.get("exploitation_addresses"),
        },
        "narrative": {
            "account": p.get("account"),
            "exploitation_dates": p.get("exploitation_dates"),
            "last_contact": lower(p.get("last_contact_with_exploiters")),
        },
        "exploiters": {
            "details": exploiters.get("details"),
            "in_uk": exploiters.get("in_uk"),
            "other_victims": p.get("other_potential_victims"),
            "risk_of_further_exploitation": p.get("risk_of_further_exploitation"),
            "indicators": p.get("indicators"),
        },
        "police": {
            "reported": p.get("reported_to_police"),
            "force": p.get("police_force"),
            "crime_reference": p.get("crime_reference"),
        },
        "first_responder": dict(fr),
        "handling": handling,
    }  # fmt: skip
    result: dict[str, Any] = compact(nrm)
    return result


__all__ = ["case_event", "dtn_event", "referral_event", "referral_native"]
