"""Native overseas alerts: a UMF-like XML message and an Interpol-style diffusion JSON.

Both shapes carry the same content, validated as :class:`OverseasAlert`: who sent it, to
which countries, about whom (each person with a status), and the handling the provider set —
SIENA handling code H0 to H3 (H3 with its restriction text), source and information
evaluation, classification and TLP. Inbound handling codes are kept intact in the markings.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, model_validator

from adapters.native.vocab import (
    AgeGroup,
    Classification,
    Country,
    ExploitationType,
    Gender,
    InformationEvaluation,
    LongText,
    Native,
    PartnerName,
    Reference,
    SienaHandling,
    SourceEvaluation,
    Text,
    Tlp,
)

PersonStatus = Literal["suspect", "victim", "witness", "missing_person", "other"]
Channel = Literal["siena", "interpol_notice", "interpol_diffusion", "bilateral"]
InterpolNotice = Literal["red", "yellow", "blue", "black", "green", "orange", "purple"]

UMF_ROOT = "UMFMessage"
"""Root element of the UMF-like alert XML."""

DIFFUSION_KEY = "diffusion"
"""The single top-level key of the Interpol-style diffusion JSON."""

LIST_ITEMS: dict[str, str] = {
    "recipient_countries": "Country",
    "exploitation_types": "Type",
    "countries": "Country",
    "persons": "Person",
    "nationalities": "Nationality",
    "aliases": "Alias",
    "identity_documents": "Document",
    "intended_recipients": "Recipient",
    "origin_authorised_recipients": "Recipient",
}
"""List fields of the XML shape and the element name of each item."""


class AlertPerson(Native):
    """A person the alert concerns, with their status (suspect, victim, witness ...)."""

    status: PersonStatus
    family_name: Text | None = None
    given_name: Text | None = None
    aliases: Annotated[tuple[Text, ...], Field(max_length=10)] = ()
    date_of_birth: date | None = None
    gender: Gender = "unknown"
    nationalities: Annotated[tuple[Country, ...], Field(max_length=2)] = ()
    identity_documents: Annotated[tuple[Text, ...], Field(max_length=5)] = ()
    last_known_town: Text | None = None
    last_known_country: Country | None = None


class AlertHandling(Native):
    """The provider's handling and evaluation codes."""

    classification: Classification
    tlp: Tlp
    siena_handling: SienaHandling | None = None
    siena_restrictions: Text | None = None
    source_evaluation: SourceEvaluation | None = None
    information_evaluation: InformationEvaluation | None = None
    intended_recipients: Annotated[tuple[PartnerName, ...], Field(max_length=50)] = ()
    """Partner ids the provider names as recipients (needed for SIENA H2 and TLP:RED)."""
    origin_country: Country | None = None
    """Of an outbound alert: the state that provided the data, if not the UK (inbound alerts
    take their origin from the sending country)."""
    origin_authorised_recipients: Annotated[tuple[PartnerName, ...], Field(max_length=50)] = ()
    """Partners the originating state authorised to receive the data."""

    @model_validator(mode="after")
    def _h3_has_text(self) -> AlertHandling:
        if self.siena_handling == "H3" and not self.siena_restrictions:
            raise ValueError("siena_restrictions must state the restriction when handling is H3")
        if (self.source_evaluation is None) != (self.information_evaluation is None):
            raise ValueError("source_evaluation and information_evaluation must be given together")
        return self


class OverseasAlert(Native):
    """An alert exchanged with a liaison point abroad."""

    message_id: Reference
    channel: Channel
    interpol_notice: InterpolNotice | None = None
    sent_at: AwareDatetime
    sender_country: Country
    recipient_countries: Annotated[tuple[Country, ...], Field(min_length=1, max_length=30)]
    reply_by: AwareDatetime | None = None
    summary: LongText | None = None
    exploitation_types: Annotated[tuple[ExploitationType, ...], Field(max_length=6)] = ()
    countries: Annotated[tuple[Country, ...], Field(max_length=20)] = ()
    victim_age_group: AgeGroup | None = None
    victim_consent: bool | None = None
    persons: Annotated[tuple[AlertPerson, ...], Field(max_length=50)] = ()
    handling: AlertHandling

    @property
    def event_type(self) -> str:
        """``alert.outbound`` when the UK sends it, ``alert.inbound`` when it comes from abroad."""
        return "alert.outbound" if self.sender_country == "GB" else "alert.inbound"
