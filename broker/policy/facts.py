"""The facts a policy decision reads, taken once from a decoded event.

:func:`extract_facts` accepts the header as the envelope's dataclass or as a plain mapping
(the JSON form ``msht policy explain`` reads) and the payload as the dict the codec decodes.
Everything the rules and guards consult is here, so deciding never touches the payload.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

from broker.errors import PolicyDecisionError
from broker.events.fields import FieldInfo
from broker.events.markings import (
    AgeGroup,
    Classification,
    Consent,
    GradingHandling,
    SienaHandling,
    Tlp,
)
from broker.policy.views import IDENTITY, carries_value

_E = TypeVar("_E", bound=Enum)


@dataclass(frozen=True)
class EventFacts:
    """What the policy knows about one event."""

    event_id: str
    event_type: str
    source: str
    subject: str
    classification: Classification
    tlp: Tlp
    siena_handling: SienaHandling
    siena_restrictions: str | None
    grading_handling: GradingHandling
    intended_recipients: frozenset[str]
    origin_country: str | None
    origin_authorised_recipients: frozenset[str]
    victim_age_group: AgeGroup
    victim_consent: Consent
    countries: frozenset[str]
    exploitation_types: frozenset[str]
    fields: tuple[FieldInfo, ...]
    """The payload schema's fields with their sensitivity tags (drives the views)."""
    identity_paths: frozenset[str]
    """Identity-tagged paths that hold a value in this payload."""

    @property
    def carries_identity(self) -> bool:
        """Whether the payload identifies a person."""
        return bool(self.identity_paths)

    @property
    def adult_without_consent(self) -> bool:
        """An adult victim whose consent is not recorded as given (MSA 2015 s.52(3)).

        A child, or a victim whose age is unknown, is presumed a child (s.51) and has no
        consent gate; an adult counts as consenting only when the event says so.
        """
        return self.victim_age_group is AgeGroup.ADULT and self.victim_consent is not Consent.YES


def extract_facts(
    header: Any, payload: Mapping[str, Any], fields: Sequence[FieldInfo]
) -> EventFacts:
    """Build :class:`EventFacts` from a header (dataclass or mapping) and a payload dict.

    Raises :class:`PolicyDecisionError` naming the header field that is missing or unknown.
    """
    h = _plain(header)
    if not isinstance(h, dict):
        raise PolicyDecisionError("event header is not a record")
    m = _plain(h.get("markings"))
    if not isinstance(m, dict):
        raise PolicyDecisionError("header.markings: missing")
    grading = m.get("grading")
    event_type = _required(h, "event_type")
    index = _index(payload)
    age = _age_group(index)
    consent = _consent(index)
    if event_type == "referral.dtn" and consent is Consent.NONE:
        # A Duty to Notify report is what is filed when an adult does not consent.
        consent = Consent.NO
    countries = set(_countries(index))
    origin = m.get("origin_country")
    if isinstance(origin, str) and origin:
        countries.add(origin.upper())
    return EventFacts(
        event_id=_required(h, "event_id"),
        event_type=event_type,
        source=_required(h, "source"),
        subject=str(h.get("subject") or ""),
        classification=_enum(Classification, m.get("classification"), "markings.classification"),
        tlp=_enum(Tlp, m.get("tlp"), "markings.tlp"),
        siena_handling=_enum(
            SienaHandling, m.get("siena_handling") or "NONE", "markings.siena_handling"
        ),
        siena_restrictions=m.get("siena_restrictions") or None,
        grading_handling=_enum(
            GradingHandling,
            (grading.get("handling") if isinstance(grading, dict) else None) or "NONE",
            "markings.grading.handling",
        ),
        intended_recipients=frozenset(str(r) for r in m.get("intended_recipients") or ()),
        origin_country=origin.upper() if isinstance(origin, str) and origin else None,
        origin_authorised_recipients=frozenset(
            str(r) for r in m.get("origin_authorised_recipients") or ()
        ),
        victim_age_group=age,
        victim_consent=consent,
        countries=frozenset(countries),
        exploitation_types=frozenset(_exploitation_types(index)),
        fields=tuple(fields),
        identity_paths=frozenset(
            f.path for f in fields if IDENTITY in f.tags and carries_value(payload, f.path)
        ),
    )


def _plain(value: Any) -> Any:
    """Dataclasses to dicts and enum members to their symbols, recursively."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, frozenset, set)):
        return [_plain(v) for v in value]
    if isinstance(value, Enum):
        return value.value if isinstance(value.value, str) else value.name
    return value


def _required(h: Mapping[str, Any], key: str) -> str:
    value = h.get(key)
    if not isinstance(value, str) or not value:
        raise PolicyDecisionError(f"header.{key}: missing")
    return value


def _enum(cls: type[_E], value: Any, where: str) -> _E:
    text = str(value).upper().replace("+", "_").replace("-", "_") if value is not None else ""
    try:
        return cls(text)
    except ValueError as exc:
        raise PolicyDecisionError(f"header.{where}: unknown value {value!r}") from exc


# --- payload facts ------------------------------------------------------------------------
# The payload schemas differ by event family (Referral, CaseUpdate, Alert), so facts are
# looked up by the field names those schemas use, wherever in the record they sit.

_AGE_KEYS = ("age_group", "victim_age_group", "age_now", "age")
_CONSENT_KEYS = ("consent", "victim_consent", "consent_given", "wants_nrm", "consents_to_nrm")
_COUNTRY_KEYS = (
    "countries",
    "exploitation_countries",
    "nationality",
    "second_nationality",
    "nationalities",
    "country_of_origin",
    "destination_country",
)
_EXPLOITATION_KEYS = ("exploitation_types", "exploitation_type", "exploitation")


Index = dict[str, list[Any]]
"""Every value of a payload by the key it is stored under, anywhere, outermost first."""


def _index(node: Any, into: Index | None = None) -> Index:
    """One pass over ``node`` that collects the values of every key (pre-order).

    The facts need a dozen keys wherever they sit; walking the payload once per key made
    fact extraction the router's largest cost after cryptography.
    """
    found: Index = {} if into is None else into
    if isinstance(node, Mapping):
        for key, value in node.items():
            found.setdefault(key, []).append(value)
        for value in node.values():
            if isinstance(value, Mapping | list):
                _index(value, found)
    elif isinstance(node, list):
        for value in node:
            if isinstance(value, Mapping | list):
                _index(value, found)
    return found


def _first(index: Index, keys: Sequence[str]) -> Any:
    for key in keys:
        for value in index.get(key, ()):
            if value is not None:
                return _plain(value)
    return None


def _age_group(index: Index) -> AgeGroup:
    value = _first(index, _AGE_KEYS)
    if isinstance(value, dict):
        # {"now": "adult", "during_exploitation": "child"}: the age now decides consent.
        value = _first(_index(value), ("now", "age_group", "group", "value"))
    if value is None:
        return AgeGroup.NONE
    text = str(value).lower()
    if text in ("adult", "child", "unknown"):
        return AgeGroup(text)
    return AgeGroup.UNKNOWN


def _consent(index: Index) -> Consent:
    value = _first(index, _CONSENT_KEYS)
    if isinstance(value, dict):
        value = _first(_index(value), ("given", "wants_nrm", "consent", "value"))
    if isinstance(value, bool):
        return Consent.YES if value else Consent.NO
    if isinstance(value, str) and value.lower() in ("yes", "no"):
        return Consent(value.lower())
    return Consent.NONE


def _strings(value: Any) -> Iterator[str]:
    value = _plain(value)
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _countries(index: Index) -> Iterator[str]:
    for key in _COUNTRY_KEYS:
        for value in index.get(key, ()):
            for s in _strings(value):
                if len(s) == 2 and s.isalpha():
                    yield s.upper()


def _exploitation_types(index: Index) -> Iterator[str]:
    for key in _EXPLOITATION_KEYS:
        for value in index.get(key, ()):
            if isinstance(value, Mapping):
                # Flags form: {"labour": true, "sexual": false, ...}
                yield from (str(k).upper() for k, v in value.items() if v is True)
            else:
                yield from (s.upper() for s in _strings(value))
