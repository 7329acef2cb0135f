"""Shared builders for the policy tests: a tagged test schema, policies and events."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import yaml

from broker.events.fields import FieldInfo, schema_fields
from broker.policy.facts import EventFacts, extract_facts
from broker.policy.model import LoadedPolicy, parse_policy

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "TestReferral",
    "namespace": "msht.test",
    "fields": [
        {"name": "referral_id", "type": "string"},
        {
            "name": "victim",
            "type": {
                "type": "record",
                "name": "Victim",
                "fields": [
                    {"name": "forename", "type": "string", "msht.sensitivity": "identity"},
                    {
                        "name": "surname",
                        "type": ["null", "string"],
                        "default": None,
                        "msht.sensitivity": "identity",
                    },
                    {
                        "name": "aliases",
                        "type": {"type": "array", "items": "string"},
                        "msht.sensitivity": "identity",
                    },
                    {
                        "name": "date_of_birth",
                        "type": ["null", {"type": "int", "logicalType": "date"}],
                        "default": None,
                        "msht.sensitivity": "identity",
                    },
                    {
                        "name": "gender",
                        "type": {
                            "type": "enum",
                            "name": "Gender",
                            "symbols": ["FEMALE", "MALE", "UNKNOWN"],
                        },
                    },
                    {"name": "nationality", "type": ["null", "string"], "default": None},
                    {"name": "age_group", "type": "string"},
                    {"name": "consent", "type": ["null", "boolean"], "default": None},
                ],
            },
        },
        {"name": "exploitation_types", "type": {"type": "array", "items": "string"}},
        {"name": "countries", "type": {"type": "array", "items": "string"}},
        {
            "name": "narrative",
            "type": ["null", "string"],
            "default": None,
            "msht.sensitivity": "operational",
        },
    ],
}

FIELDS: tuple[FieldInfo, ...] = schema_fields(SCHEMA)

IDENTITY_ONLY_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "IdentityOnly",
    "namespace": "msht.test",
    "fields": [
        {"name": "case_ref", "type": "string"},
        {"name": "age_group", "type": "string"},
        {"name": "passport_check_digit", "type": "int", "msht.sensitivity": "identity"},
    ],
}


def payload(**victim: Any) -> dict[str, Any]:
    """A referral payload about a consenting adult; keyword arguments override victim fields."""
    body: dict[str, Any] = {
        "referral_id": "R-1",
        "victim": {
            "forename": "Testa",
            "surname": "Fictional",
            "aliases": ["TF"],
            "date_of_birth": 9000,
            "gender": "FEMALE",
            "nationality": "AL",
            "age_group": "adult",
            "consent": True,
        },
        "exploitation_types": ["LABOUR"],
        "countries": ["AL", "GB"],
        "narrative": "fictional account",
    }
    body["victim"].update(victim)
    return body


def header(
    event_type: str = "referral.nrm", source: str = "met-police", **markings: Any
) -> dict[str, Any]:
    """An event header with OFFICIAL_SENSITIVE / AMBER markings; keywords override markings."""
    m: dict[str, Any] = {
        "classification": "OFFICIAL_SENSITIVE",
        "tlp": "AMBER",
        "siena_handling": None,
        "siena_restrictions": None,
        "grading": None,
        "evaluation": None,
        "intended_recipients": [],
        "origin_country": None,
        "origin_authorised_recipients": [],
    }
    m.update(markings)
    return {
        "event_id": "ev-1",
        "event_type": event_type,
        "source": source,
        "subject": "R-1",
        "occurred_at": 0,
        "published_at": 0,
        "markings": m,
    }


def facts(
    event_type: str = "referral.nrm",
    source: str = "met-police",
    body: dict[str, Any] | None = None,
    fields: tuple[FieldInfo, ...] = FIELDS,
    **markings: Any,
) -> EventFacts:
    """Facts of a test event."""
    return extract_facts(
        header(event_type, source, **markings), body if body is not None else payload(), fields
    )


def partner(pid: str, **overrides: Any) -> dict[str, Any]:
    """A UK force partner subscribed to every event type; keywords override fields."""
    base: dict[str, Any] = {
        "id": pid,
        "kind": "force",
        "jurisdiction": "GB",
        "clearance": "OFFICIAL_SENSITIVE",
        "subscriptions": {
            "event_types": [
                "referral.nrm",
                "referral.dtn",
                "case.arrest",
                "case.charge",
                "case.file_submitted",
                "case.charging_decision",
                "case.hearing_outcome",
                "alert.inbound",
                "alert.outbound",
            ]
        },
        "agreement": {
            "id": f"ISA-{pid}",
            "purposes": ["prevention_and_detection_of_crime"],
            "expires": "2030-01-01",
        },
    }
    base.update(overrides)
    return base


def overseas(pid: str, country: str = "NL", **overrides: Any) -> dict[str, Any]:
    """A liaison point abroad with adequacy, relevant-authority status and a live agreement."""
    fields: dict[str, Any] = {
        "kind": "liaison_point",
        "jurisdiction": country,
        "transfer": {"basis": "adequacy", "relevant_authority": True},
    }
    fields.update(overrides)
    return partner(pid, **fields)


VIEWS: dict[str, Any] = {
    "full": {},
    "no-identity": {"remove_tags": ["identity"]},
}


def grant_all(to: list[str], view: str = "full", **deliver: Any) -> dict[str, Any]:
    """A rule granting every event up to TOP_SECRET to ``to``."""
    return {"id": "grant-all", "deliver": {"to": to, "view": view, **deliver}}


def policy_doc(
    partners: list[dict[str, Any]],
    rules: list[dict[str, Any]],
    views: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A policy document (as parsed YAML)."""
    return {
        "version": "test",
        "partners": copy.deepcopy(partners),
        "views": copy.deepcopy(views if views is not None else VIEWS),
        "rules": copy.deepcopy(rules),
    }


def load(doc: dict[str, Any]) -> LoadedPolicy:
    """Parse a policy document through the real YAML loader."""
    return parse_policy(yaml.safe_dump(doc).encode())


def make(
    partners: list[dict[str, Any]],
    rules: list[dict[str, Any]],
    views: dict[str, Any] | None = None,
) -> LoadedPolicy:
    """Build and load a policy in one step."""
    return load(policy_doc(partners, rules, views))


def ngo(pid: str, **overrides: Any) -> dict[str, Any]:
    """A UK support provider receiving under a consent-based agreement."""
    fields: dict[str, Any] = {
        "kind": "ngo",
        "agreement": {
            "id": f"VCC-{pid}",
            "purposes": ["victim_support"],
            "basis": "consent",
            "expires": "2030-01-01",
        },
    }
    fields.update(overrides)
    return partner(pid, **fields)


def safeguarded(pid: str, country: str, **overrides: Any) -> dict[str, Any]:
    """A liaison point in a country without adequacy, under appropriate safeguards (s.75)."""
    fields: dict[str, Any] = {
        "transfer": {
            "basis": "appropriate_safeguards",
            "relevant_authority": True,
            "instrument": f"UK-{country} law-enforcement data agreement",
        }
    }
    fields.update(overrides)
    return overseas(pid, country, **fields)
