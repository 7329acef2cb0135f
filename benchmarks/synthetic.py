"""Synthetic NRM referrals of realistic size, published through the police adapter path.

Every document is a native NRM referral (the ``nrm-json`` format of ``adapters/police``)
with a full set of identity fields — names, aliases, date of birth, contacts, addresses, a
Home Office reference and a long account — so the router's views, sealing and signatures
work on the same amount of data a real referral carries (about 2 KB of Avro per signed
envelope). Every person, place, phone number and reference is fictional and says so:
names are "Testperson"/"Sampleperson" with NATO-alphabet surnames, phone numbers are in
Ofcom's drama range (07700 900xxx), e-mail addresses are under ``example.org`` and postcodes
are ``ZZ``.

Documents are deterministic for a ``(seed, index)`` pair and every index gets its own
``external_id``, so each referral has its own subject and event id.
"""

from __future__ import annotations

import csv
import json
import random
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from adapters.exchange.seam import EventSealer
from adapters.intake.pipeline import ReadyEvent, take_in

FORENAMES = ("Testperson", "Sampleperson", "Exampleperson", "Fictiveperson", "Mockperson")
SURNAMES = (
    "Alpha",
    "Bravo",
    "Charlie",
    "Delta",
    "Echo",
    "Foxtrot",
    "Golf",
    "Hotel",
    "India",
    "Juliett",
    "Kilo",
    "Lima",
    "Mike",
    "November",
    "Oscar",
    "Papa",
    "Quebec",
    "Romeo",
)
TOWNS = ("Testtown", "Exampleford", "Samplebury", "Mockton", "Fictionhampton", "Dummyport")
NATIONALITIES = ("RO", "AL", "VN", "PL", "NG", "ER", "SD", "GB", "LT", "CN")
LANGUAGES = ("Romanian", "Albanian", "Vietnamese", "Polish", "Yoruba", "Tigrinya", "Arabic")
INDICATORS = (
    "debt bondage",
    "documents withheld",
    "restricted movement",
    "no access to earnings",
    "threats against family",
    "excessive working hours",
    "poor living conditions",
)
EXPLOITATION_QUESTIONS = (
    "forced_to_work_for_nothing",
    "wages_taken",
    "forced_fraud",
    "prostitution",
    "sexually_assaulted",
    "forced_criminality",
    "domestic_servitude",
)
_SENTENCES = (
    "This is a synthetic account written for load testing only and describes no real person.",
    "The person says they were recruited with a promise of work in a fictional restaurant.",
    "On arrival their documents were taken and they were told they owed a large debt.",
    "They worked long shifts at several sites in Testtown and were not paid for the work.",
    "They were moved between addresses at night and were not allowed to leave alone.",
    "Other workers in the same house described the same treatment to the first responder.",
    "The exploiters threatened to harm relatives abroad if anyone spoke to the police.",
    "The person escaped when a fictional neighbour called the non-emergency number.",
)
ACCOUNT_CHARS = 1100
"""Length of the narrative account; with the other fields it makes a ~2 KB envelope."""


def _account(rng: random.Random) -> str:
    parts: list[str] = []
    while sum(len(p) + 1 for p in parts) < ACCOUNT_CHARS:
        parts.append(rng.choice(_SENTENCES))
    return " ".join(parts)


def referral_document(index: int, seed: int = 0) -> dict[str, Any]:
    """The native NRM referral (``nrm-json``) number ``index`` of the set ``seed``."""
    rng = random.Random(seed * 1_000_003 + index)
    external_id = uuid.UUID(int=rng.getrandbits(128), version=4)
    forename, surname = rng.choice(FORENAMES), rng.choice(SURNAMES)
    born = date(1965, 1, 1) + timedelta(days=rng.randrange(365 * 40))
    towns = rng.sample(TOWNS, 3)
    flags = rng.sample(EXPLOITATION_QUESTIONS, 3)
    return {
        "routing": {"kind": "NRM", "external_id": str(external_id), "country": "ENG"},
        "age": {"now": "adult", "during_exploitation": "adult"},
        "consent": {"wants_nrm": True, "needs_support": True, "willing_to_cooperate": True},
        "identity": {
            "forename": forename,
            "surname": f"{surname}-{index % 1000:03d}",
            "aliases": [f"{forename[0]}. {surname}-Fictional", f"{surname} Example"],
            "date_of_birth": born.isoformat(),
            "gender": rng.choice(("female", "male")),
            "nationality": rng.choice(NATIONALITIES),
            "has_dependants": rng.random() < 0.4,
            "interpreter_needed": True,
            "language": rng.choice(LANGUAGES),
            "contacts": [
                {
                    "kind": "phone",
                    "value": f"07700 900{rng.randrange(1000):03d}",
                    "safe_to_contact": True,
                },
                {
                    "kind": "email",
                    "value": f"{forename.lower()}.{index}@example.org",
                    "safe_to_contact": False,
                },
                {
                    "kind": "address",
                    "value": f"{rng.randrange(1, 99)} Example Street, "
                    f"{towns[0]}, ZZ{rng.randrange(1, 9)} {rng.randrange(1, 9)}ZZ",
                    "safe_to_contact": False,
                },
            ],
            "home_office_reference": f"HO-TEST-{index:07d}",
        },
        "exploitation": dict.fromkeys(flags, True),
        "location": {
            "where": "BOTH",
            "uk_towns": towns,
            "countries": ["GB", rng.choice(NATIONALITIES)],
            "addresses": [f"Unit {rng.randrange(1, 40)}, Fictional Trading Estate, {towns[1]}"],
        },
        "narrative": {
            "account": _account(rng),
            "exploitation_dates": "spring 2025 to autumn 2026",
            "last_contact": "within_a_month",
        },
        "exploiters": {
            "details": "Two fictional adults known only as Example One and Example Two.",
            "in_uk": True,
            "other_victims": True,
            "risk_of_further_exploitation": True,
            "indicators": rng.sample(INDICATORS, 3),
        },
        "police": {
            "reported": True,
            "force": "Metropolitan Police Service",
            "crime_reference": f"CRIS-TEST-{index:07d}",
        },
        "first_responder": {
            "organisation": "Metropolitan Police Service",
            "name": "Officer Example",
            "role": "Detective Constable",
            "phone": "020 7946 0001",
            "email": "officer.example@police.example.org",
        },
        # OFFICIAL so every partner of the benchmark policy (an NGO included) is cleared.
        "handling": {"classification": "OFFICIAL", "tlp": "AMBER"},
    }


def referral_bytes(index: int, seed: int = 0) -> bytes:
    """The UTF-8 JSON file of :func:`referral_document`."""
    return json.dumps(referral_document(index, seed)).encode()


def sealed_referrals(
    sealer: EventSealer, count: int, *, seed: int = 0, start: int = 0
) -> Iterator[ReadyEvent]:
    """``count`` referrals taken in and signed exactly as ``msht publish`` does it.

    Raises ``ValueError`` if the police adapter rejects one (the generator is then wrong).
    """
    for index in range(start, start + count):
        intake = take_in(
            f"synthetic-{seed}-{index}.json", referral_bytes(index, seed), "nrm-json", sealer
        )
        if intake.rejections or len(intake.ready) != 1:
            reasons = "; ".join(r.describe() for r in intake.rejections)
            raise ValueError(f"synthetic referral {index} was rejected: {reasons}")
        yield intake.ready[0]


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def referral_csv_row(index: int, seed: int = 0) -> dict[str, str]:
    """Row ``index`` of a bulk NRM export: the same referral as :func:`referral_document`,
    in the ``nrm-csv`` columns of ``deploy/examples/police/referrals.csv``, in their order
    (lists joined with ``;``)."""
    doc = referral_document(index, seed)
    who, where, story = doc["identity"], doc["location"], doc["narrative"]
    contacts = {c["kind"]: c for c in who["contacts"]}
    gang, police, responder = doc["exploiters"], doc["police"], doc["first_responder"]
    return {
        "external_id": doc["routing"]["external_id"],
        "kind": "NRM",
        "country": "ENG",
        "age_now": "adult",
        "age_during_exploitation": "adult",
        "wants_nrm": "yes",
        "reason_not": "",
        "needs_support": "yes",
        "willing_to_cooperate": "yes",
        "forename": who["forename"],
        "surname": who["surname"],
        "aliases": ";".join(who["aliases"]),
        "date_of_birth": who["date_of_birth"],
        "gender": who["gender"],
        "nationality": who["nationality"],
        "second_nationality": "",
        "has_dependants": _yes(who["has_dependants"]),
        "interpreter_needed": "yes",
        "language": who["language"],
        "phone": contacts["phone"]["value"],
        "phone_safe": "yes",
        "email": contacts["email"]["value"],
        "email_safe": "no",
        "address": contacts["address"]["value"],
        "address_safe": "no",
        "home_office_reference": who["home_office_reference"],
        "exploitation": ";".join(doc["exploitation"]),
        "exploitation_other_details": "",
        "where": "UK",
        "uk_towns": ";".join(where["uk_towns"]),
        "countries": ";".join(where["countries"]),
        "addresses": ";".join(where["addresses"]),
        "account": story["account"],
        "exploitation_dates": story["exploitation_dates"],
        "last_contact": story["last_contact"],
        "exploiter_details": gang["details"],
        "exploiters_in_uk": "yes",
        "other_victims": "yes",
        "risk_of_further_exploitation": "yes",
        "indicators": ";".join(gang["indicators"]),
        "reported_to_police": "yes",
        "police_force": police["force"],
        "crime_reference": police["crime_reference"],
        "responder_organisation": responder["organisation"],
        "responder_name": responder["name"],
        "responder_role": responder["role"],
        "responder_phone": responder["phone"],
        "responder_email": responder["email"],
        "local_authority_contact": "",
        "classification": doc["handling"]["classification"],
        "tlp": doc["handling"]["tlp"],
    }


def write_referral_csv(path: Path, rows: int, *, seed: int = 0) -> Path:
    """A bulk NRM export of ``rows`` synthetic referrals (``nrm-csv``) at ``path``."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=list(referral_csv_row(0, seed)))
        writer.writeheader()
        for index in range(rows):
            writer.writerow(referral_csv_row(index, seed))
    return path
