"""Marking vocabularies the policy reasons about, and their orderings.

The names match the Avro enum symbols in ``schemas/`` so values read from a decoded header
compare directly with the values an operator writes in the policy file.
"""

from __future__ import annotations

from enum import StrEnum


class Classification(StrEnum):
    """Government Security Classifications; OFFICIAL_SENSITIVE is a marking on OFFICIAL."""

    OFFICIAL = "OFFICIAL"
    OFFICIAL_SENSITIVE = "OFFICIAL_SENSITIVE"
    SECRET = "SECRET"  # noqa: S105 - a classification, not a password
    TOP_SECRET = "TOP_SECRET"  # noqa: S105

    @property
    def rank(self) -> int:
        """Position in the order OFFICIAL < OFFICIAL_SENSITIVE < SECRET < TOP_SECRET."""
        return _CLASSIFICATION_ORDER.index(self)


_CLASSIFICATION_ORDER: tuple[Classification, ...] = tuple(Classification)


class Tlp(StrEnum):
    """Traffic Light Protocol 2.0 labels."""

    CLEAR = "CLEAR"
    GREEN = "GREEN"
    AMBER = "AMBER"
    AMBER_STRICT = "AMBER_STRICT"
    RED = "RED"


class SienaHandling(StrEnum):
    """Europol SIENA handling codes; NONE stands for an event that carries none."""

    NONE = "NONE"
    H0 = "H0"
    H1 = "H1"
    H2 = "H2"
    H3 = "H3"


class GradingHandling(StrEnum):
    """Handling code of the police 3x5x2 intelligence grading; NONE when ungraded."""

    NONE = "NONE"
    P = "P"
    C = "C"


class AgeGroup(StrEnum):
    """The victim's age group; NONE for an event that concerns no victim."""

    ADULT = "adult"
    CHILD = "child"
    UNKNOWN = "unknown"
    NONE = "none"


class Consent(StrEnum):
    """Whether the victim consented to referral and sharing; NONE when not recorded."""

    YES = "yes"
    NO = "no"
    NONE = "none"


class PartnerKind(StrEnum):
    """What sort of body a partner is; the SIENA H1 guard keys on prosecutors and courts."""

    FORCE = "force"
    PROSECUTOR = "prosecutor"
    COURT = "court"
    NATIONAL_AGENCY = "national_agency"
    LIAISON_POINT = "liaison_point"
    NGO = "ngo"


class TransferBasis(StrEnum):
    """DPA 2018 Part 3 bases for a transfer outside the UK (ss.74AA, 75, 76)."""

    ADEQUACY = "adequacy"
    APPROPRIATE_SAFEGUARDS = "appropriate_safeguards"
    SPECIAL_CIRCUMSTANCES = "special_circumstances"


UK = "GB"
"""ISO 3166-1 alpha-2 code of the United Kingdom: partners elsewhere are overseas transfers."""

# fmt: off
EU_MEMBER_STATES: frozenset[str] = frozenset({
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
    "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
})
# fmt: on
"""The 27 EU member states (ISO 3166-1 alpha-2); Greece is ``GR`` as ISO spells it."""
