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


# fmt: off
ISO_3166_ALPHA2: frozenset[str] = frozenset({
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
})
# fmt: on
"""Every officially assigned ISO 3166-1 alpha-2 code (from the IANA time zone database's
iso3166.tab): a country marking outside this set is unknown and read as the most restrictive."""

COUNTRY_ALIASES: dict[str, str] = {"EL": "GR", "UK": "GB"}
"""Codes in use that ISO does not assign: the EU writes Greece ``EL`` and the UK is often
``UK``; both are normalised to ISO before any check."""


def normalise_country(code: str) -> str | None:
    """The ISO 3166-1 alpha-2 code ``code`` stands for (upper-cased, aliases resolved), or
    ``None`` when it is not one (``NLD``, ``XX``, empty): callers then fail closed."""
    upper = COUNTRY_ALIASES.get(code.strip().upper(), code.strip().upper())
    return upper if upper in ISO_3166_ALPHA2 else None


def is_eu_member(code: str) -> bool:
    """Whether ``code`` (any accepted spelling) is an EU member state."""
    return normalise_country(code) in EU_MEMBER_STATES
