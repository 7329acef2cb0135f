"""Overseas alerts ↔ the canonical ``Alert`` payload (schemas/Alert.v1.avsc).

The provider's handling travels in the markings exactly as given — SIENA code with the H3
restriction text, source and information evaluation, classification, TLP — and the
sender's country becomes the country of origin (so the policy can apply the origin
rules). The alert's send time is the event's ``occurred_at``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from adapters.native.handling import base_markings
from adapters.native.values import as_datetime, compact, lower, moment_text, upper
from adapters.overseas.models import OverseasAlert
from adapters.protocol import CanonicalEvent
from broker.events.markings import UK
from broker.types import Subject

ALERT_RECORD = "Alert"
"""Avro record name of the alert payload."""


def alert_markings(alert: OverseasAlert) -> dict[str, Any]:
    """The header markings of ``alert``, its handling codes intact."""
    h = alert.handling
    markings = base_markings(h.classification, h.tlp)
    markings.update(
        siena_handling=h.siena_handling,
        siena_restrictions=h.siena_restrictions,
        evaluation=(
            None
            if h.source_evaluation is None or h.information_evaluation is None
            else {"source": h.source_evaluation, "information": f"INFO_{h.information_evaluation}"}
        ),
        # What arrives from abroad has the sender's country as its origin; what the UK sends
        # keeps the origin of data it forwards (the EU-origin guard needs it).
        origin_country=h.origin_country if alert.sender_country == UK else alert.sender_country,
        origin_authorised_recipients=list(h.origin_authorised_recipients),
        intended_recipients=list(h.intended_recipients),
    )
    return markings


def alert_payload(alert: OverseasAlert) -> dict[str, Any]:
    """The canonical payload of ``alert``."""
    siena = alert.channel == "siena"
    return {
        "alert_id": alert.message_id,
        "direction": "OUTBOUND" if alert.sender_country == UK else "INBOUND",
        "channel": alert.channel.upper(),
        "siena_message_id": alert.message_id if siena else None,
        "interpol_reference": alert.message_id if alert.channel.startswith("interpol") else None,
        "interpol_notice": upper(alert.interpol_notice),
        "sending_country": alert.sender_country,
        "receiving_countries": list(alert.recipient_countries),
        "countries": list(alert.countries),
        "exploitation_types": [t.upper() for t in alert.exploitation_types],
        "victim_age_group": upper(alert.victim_age_group),
        "victim_consent": alert.victim_consent,
        "summary": alert.summary,
        "persons": [
            {
                "status": p.status.upper(),
                "person": {
                    "forename": p.given_name,
                    "surname": p.family_name,
                    "aliases": list(p.aliases),
                    "date_of_birth": p.date_of_birth.isoformat() if p.date_of_birth else None,
                    "gender": p.gender.upper(),
                    "nationality": p.nationalities[0] if p.nationalities else None,
                    "second_nationality": p.nationalities[1] if len(p.nationalities) > 1 else None,
                    "contact_details": [],
                    "addresses": [],
                    "identity_documents": list(p.identity_documents),
                    "pnc_id": None,
                },
                "age_group": None,
                "consent": None,
                "last_known_location": (
                    None
                    if p.last_known_town is None and p.last_known_country is None
                    else {
                        "town": p.last_known_town,
                        "country": p.last_known_country,
                        "address": None,
                    }
                ),
            }
            for p in alert.persons
        ],
        "reply_by": alert.reply_by,
    }


def alert_event(alert: OverseasAlert) -> CanonicalEvent:
    """``alert`` as an event keyed by its message id."""
    return CanonicalEvent(
        event_type=alert.event_type,
        subject=Subject(alert.message_id),
        reference=alert.message_id,
        record_name=ALERT_RECORD,
        markings=alert_markings(alert),
        payload=alert_payload(alert),
        occurred_at=alert.sent_at,
    )


def _handling(markings: Mapping[str, Any]) -> dict[str, Any]:
    evaluation = markings.get("evaluation") or {}
    information = evaluation.get("information")
    return {
        "classification": markings.get("classification"),
        "tlp": markings.get("tlp"),
        "siena_handling": markings.get("siena_handling"),
        "siena_restrictions": markings.get("siena_restrictions"),
        "source_evaluation": evaluation.get("source"),
        "information_evaluation": str(information).removeprefix("INFO_") if information else None,
        "intended_recipients": list(markings.get("intended_recipients") or []),
    }


def alert_native(
    payload: Mapping[str, Any], markings: Mapping[str, Any], occurred_at: datetime | None
) -> dict[str, Any]:
    """The native alert (JSON-ready, withheld fields absent) of a delivered event."""
    p = payload
    persons = []
    for entry in p.get("persons") or []:
        person = entry.get("person") or {}
        where = entry.get("last_known_location") or {}
        persons.append(
            {
                "status": lower(entry.get("status")),
                "family_name": person.get("surname"),
                "given_name": person.get("forename"),
                "aliases": person.get("aliases"),
                "date_of_birth": person.get("date_of_birth"),
                "gender": lower(person.get("gender")),
                "nationalities": [
                    n for n in (person.get("nationality"), person.get("second_nationality")) if n
                ],
                "identity_documents": person.get("identity_documents"),
                "last_known_town": where.get("town"),
                "last_known_country": where.get("country"),
            }
        )
    doc = {
        "message_id": p.get("alert_id"),
        "channel": lower(p.get("channel")),
        "interpol_notice": lower(p.get("interpol_notice")),
        "sent_at": moment_text(occurred_at),
        "sender_country": p.get("sending_country"),
        "recipient_countries": p.get("receiving_countries"),
        "reply_by": moment_text(as_datetime(p.get("reply_by"))),
        "summary": p.get("summary"),
        "exploitation_types": [lower(t) for t in p.get("exploitation_types") or []],
        "countries": p.get("countries"),
        "victim_age_group": lower(p.get("victim_age_group")),
        "victim_consent": p.get("victim_consent"),
        "persons": persons,
        "handling": _handling(markings),
    }
    result: dict[str, Any] = compact(doc)
    return result
