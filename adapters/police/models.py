"""Native police documents: NRM referral, Duty to Notify report, and case updates.

Field groups follow the Home Office NRM form (UKHomeOffice/modern-slavery, ``apps/nrm``):
routing, age, consent, identity, exploitation, location, narrative, exploiters, police and
first responder. Case updates (arrest, charge, file submitted) are keyed by URN; the case
models themselves are shared with the CPS adapter (:mod:`adapters.native.case`).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, model_validator

from adapters.native.case import CaseUpdateDocument
from adapters.native.vocab import AgeGroup, Country, Gender, Handling, LongText, Native, Text

LastContact = Literal[
    "within_a_week", "within_a_month", "within_a_year", "over_a_year", "not_sure",
]  # fmt: skip
Where = Literal["UK", "OVERSEAS", "BOTH"]
NrmCountry = Literal["ENG", "WAL", "SCOT", "NI"]


class Routing(Native):
    """Which form, where in the UK, and the external id used to spot duplicates."""

    kind: Literal["NRM", "DTN"]
    external_id: UUID
    country: NrmCountry


class AgeInfo(Native):
    """The person's age group now and while exploited."""

    now: AgeGroup
    during_exploitation: AgeGroup


class ConsentInfo(Native):
    """Whether the person wants to enter the NRM, and the support they need."""

    wants_nrm: bool
    reason_not: Text | None = None
    needs_support: bool = False
    willing_to_cooperate: bool | None = None


class Contact(Native):
    """One way to reach the person, and whether it is safe to use."""

    kind: Literal["phone", "email", "address"]
    value: Text
    safe_to_contact: bool


class Identity(Native):
    """Who the person is. Every field here identifies a person."""

    forename: Text
    surname: Text
    aliases: Annotated[tuple[Text, ...], Field(max_length=10)] = ()
    date_of_birth: date | None = None
    gender: Gender
    nationality: Country
    second_nationality: Country | None = None
    has_dependants: bool | None = None
    interpreter_needed: bool = False
    language: Text | None = None
    contacts: Annotated[tuple[Contact, ...], Field(max_length=10)] = ()
    home_office_reference: Text | None = None


class Exploitation(Native):
    """The ten yes/no exploitation questions of the NRM form."""

    forced_to_work_for_nothing: bool = False
    wages_taken: bool = False
    forced_fraud: bool = False
    prostitution: bool = False
    child_sexual_exploitation: bool = False
    sexually_assaulted: bool = False
    forced_criminality: bool = False
    organs_removed: bool = False
    domestic_servitude: bool = False
    other: bool = False
    other_details: Text | None = None

    @model_validator(mode="after")
    def _other_needs_details(self) -> Exploitation:
        if self.other and not self.other_details:
            raise ValueError("other_details must describe the exploitation when other is yes")
        return self


class Location(Native):
    """Where the exploitation happened."""

    where: Where
    uk_towns: Annotated[tuple[Text, ...], Field(max_length=10)] = ()
    countries: Annotated[tuple[Country, ...], Field(max_length=10)] = ()
    addresses: Annotated[tuple[Text, ...], Field(max_length=10)] = ()


class Narrative(Native):
    """The person's account, in their words as recorded by the first responder."""

    account: LongText
    exploitation_dates: Text | None = None
    last_contact: LastContact = "not_sure"


class Exploiters(Native):
    """What is known of the exploiters and the risk they still pose."""

    details: LongText | None = None
    in_uk: bool | None = None
    other_victims: bool | None = None
    risk_of_further_exploitation: bool | None = None
    indicators: Annotated[tuple[Text, ...], Field(max_length=50)] = ()


class PoliceInfo(Native):
    """Whether the case was reported to police, to which force, and the crime reference."""

    reported: bool
    force: Text | None = None
    crime_reference: Text | None = None


class FirstResponder(Native):
    """The first responder making the referral."""

    organisation: Text
    name: Text
    role: Text
    phone: Text
    email: Text
    local_authority_contact: Text | None = None


class NrmReferral(Native):
    """An NRM referral (``routing.kind`` is ``NRM``)."""

    routing: Routing
    age: AgeInfo
    consent: ConsentInfo
    identity: Identity
    exploitation: Exploitation
    location: Location
    narrative: Narrative
    exploiters: Exploiters = Exploiters()
    police: PoliceInfo
    first_responder: FirstResponder
    handling: Handling = Handling()

    @model_validator(mode="after")
    def _consent_rules(self) -> NrmReferral:
        # MSA 2015 s.51: a child, or anyone whose age is unsure, needs no consent; an adult who
        # does not consent is reported by a Duty to Notify without identity instead.
        if self.routing.kind != "NRM":
            raise ValueError("routing.kind must be NRM (a Duty to Notify report is dtn-json)")
        if self.age.now == "adult" and not self.consent.wants_nrm:
            raise ValueError(
                "an adult who does not consent cannot be referred to the NRM: "
                "file a Duty to Notify report without identifying details instead"
            )
        if self.age.now == "child" and self.first_responder.local_authority_contact is None:
            raise ValueError(
                "first_responder.local_authority_contact is required when the person is a child"
            )
        return self


class DtnIdentity(Native):
    """The only personal facts an anonymous Duty to Notify report may carry (MSA 2015 s.52(3))."""

    gender: Gender
    nationality: Country | None = None


class DtnLocation(Native):
    """Where the exploitation happened, without addresses or towns."""

    where: Where
    countries: Annotated[tuple[Country, ...], Field(max_length=10)] = ()


class DtnPolice(Native):
    """The force the report is filed by, without a crime reference."""

    force: Text


class DtnResponder(Native):
    """The organisation filing the report (no personal contact details)."""

    organisation: Text


class DutyToNotify(Native):
    """A Duty to Notify report for an adult who did not consent: no identifying information."""

    routing: Routing
    identity: DtnIdentity
    exploitation: Exploitation
    location: DtnLocation
    police: DtnPolice
    first_responder: DtnResponder
    handling: Handling = Handling()

    @model_validator(mode="after")
    def _is_dtn(self) -> DutyToNotify:
        if self.routing.kind != "DTN":
            raise ValueError("routing.kind must be DTN for a Duty to Notify report")
        return self


# Fields that would identify the person; their presence makes an anonymous DtN unlawful.
DTN_IDENTIFYING_FIELDS: frozenset[str] = frozenset(
    {
        "forename", "surname", "aliases", "date_of_birth", "dob", "name", "names",
        "contacts", "phone", "email", "address", "addresses", "home_office_reference",
        "second_nationality", "has_dependants", "language", "uk_towns", "account", "narrative",
        "exploiters", "crime_reference", "other_details", "photo", "passport_number",
        "identity_document", "identity_documents", "duplicate_of", "pnc_id", "pnc",
        "urn", "case_reference", "interpol_reference", "siena_message_id", "nrm_reference",
    }
)  # fmt: skip
"""Keys refused anywhere in a Duty to Notify report (MSA 2015 s.52(3)): identity, contact
details and linking references (a crime reference, an earlier referral, a PNC id) that find
the person in combination with other records."""

DTN_CONSENT_FIELDS: frozenset[str] = frozenset(
    {"consent", "wants_nrm", "consents", "consent_given", "consents_to_nrm"}
)
"""Keys that would claim consent; a report with consent is an NRM referral, not a DtN."""


__all__ = [
    "DTN_CONSENT_FIELDS",
    "DTN_IDENTIFYING_FIELDS",
    "CaseUpdateDocument",
    "DutyToNotify",
    "NrmReferral",
]
