"""Sample payloads and markings for the event tests (fictional people, fixed values)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

OCCURRED = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
PUBLISHED = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def person(**overrides: Any) -> dict[str, Any]:
    """A fictional person with every identifying field set."""
    base: dict[str, Any] = {
        "forename": "Ana",
        "surname": "Testova",
        "aliases": ["A. T."],
        "date_of_birth": "1999-04-01",
        "gender": "FEMALE",
        "nationality": "RO",
        "second_nationality": None,
        "contact_details": [{"kind": "PHONE", "value": "07700 900123", "safe_to_contact": True}],
        "addresses": ["1 Example Street, Leeds"],
        "identity_documents": [],
    }
    base.update(overrides)
    return base


def referral(**overrides: Any) -> dict[str, Any]:
    """An NRM referral of a consenting adult (Referral v1 fields only)."""
    base: dict[str, Any] = {
        "referral_id": "3f1c2b9e-7d4a-4c55-9a0e-1b2c3d4e5f60",
        "kind": "NRM",
        "nation": "ENG",
        "age_group": "ADULT",
        "consent": True,
        "victim": person(),
        "exploitation_types": ["LABOUR"],
        "exploitation_flags": ["FORCED_WORK_UNPAID", "WAGES_TAKEN"],
        "exploitation_in": "BOTH",
        "exploitation_towns": ["Leeds"],
        "exploitation_countries": ["GB", "RO"],
        "account": "Recruited with a promise of farm work; passport taken on arrival.",
        "last_contact_with_exploiters": "WITHIN_A_MONTH",
        "reported_to_police": True,
        "police_force": "West Yorkshire Police",
        "crime_reference": "13/123456/26",
    }
    base.update(overrides)
    return base


def case_update(**overrides: Any) -> dict[str, Any]:
    """A charge case update with one defendant and one victim."""
    base: dict[str, Any] = {
        "urn": "45EL1234525",
        "update_type": "CHARGE",
        "exploitation_types": ["LABOUR"],
        "countries": ["GB"],
        "victims": [{"index": 1, "person": person(), "age_group": "ADULT", "consent": True}],
        "defendants": [
            {
                "index": 1,
                "person": person(forename="Ivan", surname="Suspectov", gender="MALE"),
                "arrest_date": OCCURRED,
                "not_yet_charged": False,
                "charges": [{"offence_code": "MS15002", "mode_of_trial": "IND", "victim_index": 1}],
            }
        ],
    }
    base.update(overrides)
    return base


def alert(**overrides: Any) -> dict[str, Any]:
    """An inbound SIENA alert about a suspect."""
    base: dict[str, Any] = {
        "alert_id": "SIENA-2026-0042",
        "direction": "INBOUND",
        "channel": "SIENA",
        "siena_message_id": "EU-123",
        "sending_country": "NL",
        "countries": ["NL", "GB"],
        "exploitation_types": ["SEXUAL"],
        "persons": [{"status": "SUSPECT", "person": person(forename="Jan", gender="MALE")}],
    }
    base.update(overrides)
    return base


def markings(**overrides: Any) -> dict[str, Any]:
    """OFFICIAL-SENSITIVE, TLP:AMBER, graded 1A P."""
    base: dict[str, Any] = {
        "classification": "OFFICIAL_SENSITIVE",
        "tlp": "AMBER",
        "grading": {"source": "SOURCE_1", "intelligence": "A", "handling": "P"},
    }
    base.update(overrides)
    return base
