"""The facts a policy decision reads, taken once from a decoded event.

:func:`extract_facts` accepts the header as the envelope's dataclass or as a plain mapping
(the JSON form ``msht policy explain`` reads) and the payload as the dict the codec decodes.
Everything the rules and guards consult is here, so deciding never touches the payload.
"""

from __future__ import annotations

import dataclasses
import re
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

VICTIM = "victim"
MIXED = "mixed"

_STATUS_ROLES = {
    "SUSPECT": "suspect",
    "VICTIM": VICTIM,
    "WITNESS": "witness",
}
"""An alert person's ``status`` as a role; anything else (a missing person, ``OTHER``, an
unknown symbol) is read as a victim: the restrictive reading."""


@dataclass(frozen=True)
class PersonFacts:
    """One person in the payload and the facts that decide what happens to their fields."""

    instance: str
    """The concrete path of this person's record (``victims[1]``), ``""`` for the payload's
    own person (a referral's victim)."""
    container: str
    """The schema path the person's fields sit under (``victims[]``, or ``""``)."""
    role: str
    age_group: AgeGroup
    """The person's own age group now: a missing age reads as adult (the consent gate then
    applies), an unreadable one as unknown."""
    consent: Consent
    """The person's own consent: missing or unreadable reads as not given (``NONE``)."""

    @property
    def protected(self) -> bool:
        """A victim who must not be identifiable: not known to be a child, consent not given.

        MSA 2015 s.52(3): an adult's identity needs their consent. A victim whose age is
        unknown is read the restrictive way here: the consent gate applies until they are
        known to be a child.
        """
        return (
            self.role == VICTIM
            and self.age_group is not AgeGroup.CHILD
            and self.consent is not Consent.YES
        )

    @property
    def label(self) -> str:
        """How a decision names this person: ``victims[1]``, or the role for the one person."""
        return self.instance or self.role


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
    persons: tuple[PersonFacts, ...] = ()
    """Every person the payload's schema says its fields are about, each with their own
    facts; victims' age and consent decide that victim's fields alone."""

    @property
    def protected_persons(self) -> tuple[PersonFacts, ...]:
        """The victims whose data no partner may receive (see :attr:`PersonFacts.protected`)."""
        return tuple(p for p in self.persons if p.protected)

    @property
    def carries_identity(self) -> bool:
        """Whether the payload identifies a person."""
        return bool(self.identity_paths)

    @property
    def adult_without_consent(self) -> bool:
        """Some victim is not known to be a child and has not consented (MSA 2015 s.52(3)).

        Read per person (:attr:`protected_persons`); an event whose schema names no victim
        falls back to its event-level facts.
        """
        if any(p.role == VICTIM for p in self.persons):
            return bool(self.protected_persons)
        return self.victim_age_group is AgeGroup.ADULT and self.victim_consent is not Consent.YES


def extract_facts(
    header: Any, payload: Mapping[str, Any], fields: Sequence[FieldInfo]
) -> EventFacts:
    """Build :class:`EventFacts` from a header (dataclass or mapping) and a payload dict.

    Raises :class:`PolicyDecisionError` naming the header field that is missing or unknown.
    """
    h = _header_fields(header)
    if not isinstance(h, dict):
        raise PolicyDecisionError("event header is not a record")
    m = _plain(h.get("markings"))
    if not isinstance(m, dict):
        raise PolicyDecisionError("header.markings: missing")
    grading = m.get("grading")
    event_type = _required(h, "event_type")
    index = _index(payload)
    persons = _persons(payload, fields, event_type)
    victims = [p for p in persons if p.role == VICTIM]
    if victims:
        # One value per event only for rule matching, and never dependent on list order.
        ages = {v.age_group for v in victims}
        age = ages.pop() if len(ages) == 1 else AgeGroup.UNKNOWN
        consents = {v.consent for v in victims}
        consent = (
            Consent.YES
            if consents == {Consent.YES}
            else Consent.NO
            if Consent.NO in consents
            else Consent.NONE
        )
    else:
        age = _age_group(index)
        consent = _consent(index)
    if event_type == "referral.dtn":
        # A Duty to Notify report is what is filed when an adult does not consent: whatever
        # the document claims, it is never read as consent (MSA 2015 s.52(3)).
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
        persons=persons,
    )


def _persons(
    payload: Mapping[str, Any], fields: Sequence[FieldInfo], event_type: str
) -> tuple[PersonFacts, ...]:
    """One :class:`PersonFacts` per person the schema's ``msht.person`` attributes describe.

    Sorted by instance and role, so nothing downstream can depend on the payload's order.
    """
    containers: dict[tuple[str, str | None], str | None] = {}
    legacy = not any(f.person is not None for f in fields)
    if legacy:
        # A schema from before typed sensitivity: its tagged fields are its one victim's.
        containers[("", VICTIM)] = None
    for f in fields:
        if f.person is None or f.role == MIXED:
            continue
        containers.setdefault((f.person, f.role), f.role_from)
    out: list[PersonFacts] = []
    for (container, role), role_from in containers.items():
        for instance, node in _instances(payload, container):
            who = role
            if role_from is not None:
                status = node.get(role_from.rsplit(".", 1)[-1]) if isinstance(node, dict) else None
                who = _STATUS_ROLES.get(str(_plain(status)).upper(), VICTIM)
            if who is None:
                continue
            out.append(PersonFacts(instance, container, who, AgeGroup.ADULT, Consent.NONE))
    if legacy:
        index = _index(payload)
        age = _age_group(index)
        people = [
            PersonFacts(
                "",
                "",
                VICTIM,
                AgeGroup.ADULT if age is AgeGroup.NONE else age,
                Consent.NO if event_type == "referral.dtn" else _consent(index),
            )
        ]
    else:
        people = _victim_facts(out, payload, event_type)
    return tuple(sorted(people, key=lambda p: (p.instance, p.role)))


def _victim_facts(
    people: list[PersonFacts], payload: Mapping[str, Any], event_type: str
) -> list[PersonFacts]:
    """Fill in each victim's own age group and consent from their own record.

    An alert's event-level ``victim_age_group``/``victim_consent`` stand for its victim only
    when it has exactly one; with several, each victim's own values (or the restrictive
    defaults) decide.
    """
    victims = [p for p in people if p.role == VICTIM]
    out = [p for p in people if p.role != VICTIM]
    for v in victims:
        node = _node_at(payload, v.instance)
        own = node if isinstance(node, Mapping) else {}
        age_value = own.get("age_group")
        consent_value = own.get("consent")
        if len(victims) == 1 and v.instance:
            if age_value is None:
                age_value = payload.get("victim_age_group")
            if consent_value is None:
                consent_value = payload.get("victim_consent")
        consent = _consent_value(consent_value)
        if event_type == "referral.dtn":
            consent = Consent.NO
        out.append(dataclasses.replace(v, age_group=_age_value(age_value), consent=consent))
    return out


def _age_value(value: Any) -> AgeGroup:
    value = _plain(value)
    if isinstance(value, dict):
        value = _first(_index(value), ("now", "age_group", "group", "value"))
    if value is None:
        return AgeGroup.ADULT
    text = str(value).lower()
    return AgeGroup(text) if text in ("adult", "child") else AgeGroup.UNKNOWN


def _consent_value(value: Any) -> Consent:
    value = _plain(value)
    if isinstance(value, dict):
        value = _first(_index(value), ("given", "wants_nrm", "consent", "value"))
    if value is True or (isinstance(value, str) and value.lower() == "yes"):
        return Consent.YES
    if value is False or (isinstance(value, str) and value.lower() == "no"):
        return Consent.NO
    return Consent.NONE


def _instances(payload: Mapping[str, Any], container: str) -> list[tuple[str, Any]]:
    """Each concrete item under ``container`` (``victims[]``) with its path (``victims[0]``)."""
    found: list[tuple[str, Any]] = [("", payload)]
    for part in container.split(".") if container else ():
        step = ""
        if part.endswith(("[]", "{}")):
            part, step = part[:-2], part[-2:]
        nxt: list[tuple[str, Any]] = []
        for path, node in found:
            value = node.get(part) if isinstance(node, Mapping) else None
            here = f"{path}.{part}" if path else part
            if step == "[]" and isinstance(value, list):
                nxt += [(f"{here}[{i}]", item) for i, item in enumerate(value)]
            elif step == "{}" and isinstance(value, Mapping):
                nxt += [(f"{here}{{{k}}}", item) for k, item in value.items()]
            elif not step and value is not None:
                nxt.append((here, value))
        found = nxt
    return found


def _node_at(payload: Mapping[str, Any], instance: str) -> Any:
    for path, node in _instances(payload, _generic(instance)):
        if path == instance:
            return node
    return None


def _generic(instance: str) -> str:
    """``victims[1].x`` -> ``victims[].x``."""
    return re.sub(r"\[\d+\]", "[]", re.sub(r"\{[^}]*\}", "{}", instance))


_HEADER_FIELDS = ("event_id", "event_type", "source", "subject", "markings")


def _header_fields(header: Any) -> Any:
    """What :func:`extract_facts` reads of a header, as :func:`_plain` would give it.

    A header dataclass (the envelope's) is read field by field: converting all of it (times,
    fingerprint, provenance) only to read five of its fields cost as much as the rest of the
    facts together.
    """
    if dataclasses.is_dataclass(header) and not isinstance(header, type):
        return {name: _plain(getattr(header, name, None)) for name in _HEADER_FIELDS}
    return _plain(header)


_SCALARS = frozenset({str, bool, int, float})
"""Exact types :func:`_plain` returns as they are (an enum member is a subclass: converted)."""


def _plain(value: Any) -> Any:
    """Dataclasses to dicts and enum members to their symbols, recursively."""
    if value is None or type(value) in _SCALARS:
        return value  # the common case, before the slower dataclass and ABC checks
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if _is_mapping(value):
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
    if _is_mapping(node):
        for key, value in node.items():
            found.setdefault(key, []).append(value)
        for value in node.values():
            if isinstance(value, list) or _is_mapping(value):
                _index(value, found)
    elif isinstance(node, list):
        for value in node:
            if isinstance(value, list) or _is_mapping(value):
                _index(value, found)
    return found


def _is_mapping(value: Any) -> bool:
    # A decoded payload is dicts and scalars: the exact check first (an ABC check is slow).
    return isinstance(value, dict) or (
        not isinstance(value, str | int | float | bytes) and isinstance(value, Mapping)
    )


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
