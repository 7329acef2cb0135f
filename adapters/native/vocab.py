"""Field types shared by the native models: codes, references and markings, each with a reason
a caseworker can act on when a value does not fit."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from broker.events.markings import normalise_country

_URN = re.compile(r"^[0-9]{2}[A-Z0-9]{2}[0-9]{5}[0-9]{2}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_OFFENCE = re.compile(r"^MS1500[1-7]C?$")


def _urn(value: str) -> str:
    value = value.strip().upper()
    if not _URN.fullmatch(value):
        raise ValueError(
            "must be an 11-character URN: 2-digit force code, 2-character unit, "
            "5-digit case number and 2-digit year (e.g. 45EL1234525)"
        )
    return value


def _country(value: str) -> str:
    upper = value.strip().upper()
    code = normalise_country(upper) if _COUNTRY.fullmatch(upper) else None
    if code is None:
        raise ValueError("must be a two-letter ISO 3166 country code, e.g. GB, RO, VN")
    return code


def _offence(value: str) -> str:
    value = value.strip().upper()
    if not _OFFENCE.fullmatch(value):
        raise ValueError(
            "must be a Modern Slavery Act offence code MS15001 to MS15007, "
            "with a C suffix for conspiracy (e.g. MS15003 or MS15003C)"
        )
    return value


Urn = Annotated[str, AfterValidator(_urn)]
"""Unique Reference Number shared by police, CPS and courts (``45EL1234525``)."""

Country = Annotated[str, AfterValidator(_country)]
"""ISO 3166-1 alpha-2 country code."""

OffenceCode = Annotated[str, AfterValidator(_offence)]
"""Modern Slavery Act 2015 offence code, ``MS15001`` to ``MS15007`` with an optional ``C``."""

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
"""A short free-text field (names, places, roles)."""

LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=15000)]
"""A long free-text field (the account, summaries); the NRM form allows 15,000 characters."""

Reference = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"^\S+$")
]
"""A document's own reference: no spaces."""

PartnerName = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")
]
"""A partner id of the exchange (``ilo-nl``, ``cps``)."""

Classification = Literal["OFFICIAL", "OFFICIAL_SENSITIVE", "SECRET", "TOP_SECRET"]
Tlp = Literal["CLEAR", "GREEN", "AMBER", "AMBER_STRICT", "RED"]
SienaHandling = Literal["H0", "H1", "H2", "H3"]
SourceEvaluation = Literal["A", "B", "C", "X"]
InformationEvaluation = Literal["1", "2", "3", "4"]
Gender = Literal["female", "male", "unknown"]
AgeGroup = Literal["adult", "child", "unknown"]
ExploitationType = Literal[
    "sexual", "labour", "criminal", "domestic_servitude", "organ_harvesting", "other"
]


class Native(BaseModel):
    """Base of every native model: unknown fields are refused, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Grading(Native):
    """The police 3x5x2 intelligence grading: source (1-3), intelligence (A-E), handling (P/C)."""

    source: Literal["1", "2", "3"]
    intelligence: Literal["A", "B", "C", "D", "E"]
    handling: Literal["P", "C"]


class Handling(Native):
    """Protective markings a police document carries (defaults suit a victim referral)."""

    classification: Classification = "OFFICIAL_SENSITIVE"
    tlp: Tlp = "AMBER"
    intended_recipients: Annotated[tuple[PartnerName, ...], Field(max_length=50)] = ()
    """Partner ids the document is meant for (the audience of TLP:RED)."""
    grading: Grading | None = None
    """The 3x5x2 intelligence grading, when the document carries intelligence."""
    siena_handling: SienaHandling | None = None
    """A SIENA handling code the document inherited from an EU provider's message."""
    siena_restrictions: LongText | None = None
    origin_country: Country | None = None
    """The country that provided the data, when it came from abroad."""
    origin_authorised_recipients: Annotated[tuple[PartnerName, ...], Field(max_length=50)] = ()
    """Partners the originating state authorised to receive it (EU-origin transfers)."""
