"""Lawful bases, purposes and the adequacy list: what every disclosure rests on.

Pure vocabulary plus one data file shipped with the package (``adequacy.yaml``, read once).
A delivery inside the UK to a law-enforcement partner rests on DPA 2018 Part 3 processing for
a law-enforcement purpose (s.31, s.35(2)(b)); a delivery to any other partner (a victim support
provider) on the UK GDPR Art. 6 basis its agreement names; a transfer abroad additionally on the
partner's own transfer basis (DPA 2018 ss.73-76), checked here against the adequacy list.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from broker.errors import PolicyError
from broker.events.markings import PartnerKind, TransferBasis

UK_TIME = ZoneInfo("Europe/London")
"""Agreements are dated in UK local time: their start and end days are UK calendar days."""

ADEQUACY_FILE = Path(__file__).with_name("adequacy.yaml")
"""The dated adequacy list shipped with the project."""


class Purpose(StrEnum):
    """Why a partner receives: the purposes an information-sharing agreement may name."""

    PREVENTION_DETECTION = "prevention_and_detection_of_crime"
    INVESTIGATION = "investigation"
    PROSECUTION = "prosecution"
    VICTIM_SUPPORT = "victim_support"
    SAFEGUARDING = "safeguarding"


LAW_ENFORCEMENT_PURPOSES: frozenset[Purpose] = frozenset(
    {Purpose.PREVENTION_DETECTION, Purpose.INVESTIGATION, Purpose.PROSECUTION}
)
"""The DPA 2018 s.31 law-enforcement purposes (prevention, investigation, detection or
prosecution of criminal offences); safeguarding and victim support are not among them."""


class ProcessingBasis(StrEnum):
    """The basis a disclosure rests on: Part 3 for competent authorities, else UK GDPR Art. 6."""

    LAW_ENFORCEMENT = "law_enforcement"
    CONSENT = "consent"
    LEGAL_OBLIGATION = "legal_obligation"
    VITAL_INTERESTS = "vital_interests"
    PUBLIC_TASK = "public_task"
    LEGITIMATE_INTERESTS = "legitimate_interests"


BASIS_CITATIONS: dict[ProcessingBasis, str] = {
    ProcessingBasis.LAW_ENFORCEMENT: (
        "DPA 2018 Part 3 s.35(2)(b): necessary for a law-enforcement purpose (s.31)"
    ),
    ProcessingBasis.CONSENT: "UK GDPR Art. 6(1)(a): the data subject's consent",
    ProcessingBasis.LEGAL_OBLIGATION: "UK GDPR Art. 6(1)(c): a legal obligation",
    ProcessingBasis.VITAL_INTERESTS: "UK GDPR Art. 6(1)(d): vital interests",
    ProcessingBasis.PUBLIC_TASK: "UK GDPR Art. 6(1)(e): a task in the public interest",
    ProcessingBasis.LEGITIMATE_INTERESTS: "UK GDPR Art. 6(1)(f): legitimate interests",
}
"""The statute each basis cites (what ``msht policy explain`` and docs/POLICY.md print)."""

TRANSFER_CITATIONS: dict[TransferBasis, str] = {
    TransferBasis.ADEQUACY: "DPA 2018 s.74AA: adequacy regulations",
    TransferBasis.APPROPRIATE_SAFEGUARDS: "DPA 2018 s.75: appropriate safeguards",
    TransferBasis.SPECIAL_CIRCUMSTANCES: "DPA 2018 s.76: special circumstances (case by case)",
}
"""The statute each transfer basis cites."""

COMPETENT_AUTHORITY_KINDS: frozenset[PartnerKind] = frozenset(
    {
        PartnerKind.FORCE,
        PartnerKind.PROSECUTOR,
        PartnerKind.COURT,
        PartnerKind.NATIONAL_AGENCY,
        PartnerKind.LIAISON_POINT,
    }
)
"""Partner kinds that are competent authorities (DPA 2018 s.30): they receive under Part 3.
Every other kind (an NGO) is not law enforcement: SIENA H0 withholds from it."""


@dataclass(frozen=True)
class AdequacyList:
    """The countries adequate for law-enforcement transfers, as of a date."""

    as_of: date
    source: str
    countries: dict[str, str]
    """ISO 3166-1 alpha-2 code → country name."""

    def covers(self, country: str) -> bool:
        """Whether ``country`` is on the list."""
        return country in self.countries


def parse_adequacy(raw: Any, source: str = str(ADEQUACY_FILE)) -> AdequacyList:
    """Validate an adequacy document; :class:`PolicyError` names what is wrong."""
    if not isinstance(raw, dict):
        raise PolicyError(f"{source}: must be a mapping with as_of, source and countries")
    as_of, cited, countries = raw.get("as_of"), raw.get("source"), raw.get("countries")
    if not isinstance(as_of, date):
        raise PolicyError(f"{source}: as_of must be a date (YYYY-MM-DD)")
    if not isinstance(countries, dict) or not countries:
        raise PolicyError(f"{source}: countries must map ISO 3166-1 alpha-2 codes to names")
    bad = [str(c) for c in countries if not (isinstance(c, str) and len(c) == 2 and c.isupper())]
    if bad:
        raise PolicyError(f"{source}: not ISO 3166-1 alpha-2 codes: {', '.join(bad)}")
    return AdequacyList(
        as_of=as_of,
        source=str(cited or ""),
        countries={str(k): str(v) for k, v in countries.items()},
    )


@functools.cache
def adequacy_list() -> AdequacyList:
    """The adequacy list shipped with the project (read once)."""
    try:
        raw = yaml.safe_load(ADEQUACY_FILE.read_bytes())
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"{ADEQUACY_FILE}: cannot read the adequacy list: {exc}") from exc
    return parse_adequacy(raw)


@dataclass(frozen=True)
class TransferRecord:
    """The documentation DPA 2018 ss.75(3) and 76(3) require of a transfer abroad.

    The date and time, the recipient, the justification (with the basis and, for appropriate
    safeguards, the instrument) and what was transferred: the event type and id, the view,
    and the fields it withheld. Written with the audit record of the delivery.
    """

    time: str
    recipient: str
    jurisdiction: str
    basis: TransferBasis
    justification: str
    instrument: str | None
    event_type: str
    view: str
    withheld: tuple[str, ...]
    onward_sharing: str | None

    def to_json(self) -> dict[str, Any]:
        """The JSON object written in the audit record."""
        return {
            "time": self.time,
            "recipient": self.recipient,
            "jurisdiction": self.jurisdiction,
            "basis": self.basis.value,
            "justification": self.justification,
            "instrument": self.instrument,
            "event_type": self.event_type,
            "view": self.view,
            "withheld": list(self.withheld),
            "onward_sharing": self.onward_sharing,
        }


def describe_basis(partner: Any) -> str:
    """One line for a partner: agreement, purposes, lawful basis and, abroad, transfer basis.

    ``partner`` is a :class:`broker.policy.model.Partner` (typed loosely: the model imports
    this module).
    """
    a = partner.agreement
    if a is None:
        return "no agreement: receives nothing"
    basis = a.basis or (
        ProcessingBasis.LAW_ENFORCEMENT if partner.kind in COMPETENT_AUTHORITY_KINDS else None
    )
    cite = BASIS_CITATIONS[basis] if basis is not None else "no lawful basis: receives nothing"
    until = f"{a.starts.isoformat() if a.starts else '…'} to {a.expires.isoformat()}"
    line = f"agreement {a.id} ({until}); purposes {', '.join(p.value for p in a.purposes)}; {cite}"
    t = partner.transfer
    if partner.overseas:
        if t is None:
            line += "; transfer: no basis"
        else:
            line += f"; transfer: {TRANSFER_CITATIONS[t.basis]}"
            if t.instrument:
                line += f" ({t.instrument})"
    if a.conditions.onward_sharing:
        line += f"; onward sharing: {a.conditions.onward_sharing}"
    return line
