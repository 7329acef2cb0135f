"""The policy file's data model, and loading it with every problem reported at once.

A policy is a YAML document with four parts: ``partners`` (the registry), ``views`` (what each
kind of recipient may see), ``rules`` (ordered; the first rule that names a partner decides for
it) and a ``version`` label. The authoritative version of a loaded policy is the SHA-256 digest
of the file's bytes (:attr:`LoadedPolicy.version`), which every decision and audit record cites.
See ``docs/POLICY.md`` for the format.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from broker.errors import PolicyError
from broker.events.markings import (
    UK,
    AgeGroup,
    Classification,
    Consent,
    GradingHandling,
    PartnerKind,
    SienaHandling,
    Tlp,
    TransferBasis,
    normalise_country,
)
from broker.events.schemas import EVENT_TYPES
from broker.policy.lawful import COMPETENT_AUTHORITY_KINDS, UK_TIME, ProcessingBasis, Purpose

Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=64)]
"""Partner, group, view and rule names: lower-case, digits, ``.``, ``_`` and ``-``."""


def _iso_country(value: str) -> str:
    code = normalise_country(value)
    if code is None:
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
    return code


Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$"), AfterValidator(_iso_country)]
"""An ISO 3166-1 alpha-2 country code (``GB``, ``NL``); ``EL`` is read as Greece (``GR``)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Conditions(_Strict):
    """Conditions an information-sharing agreement puts on what the partner receives."""

    onward_sharing: str | None = None
    """Whether and how the recipient may pass the data on (travels with a transfer abroad)."""
    retention: str | None = None
    """How long the recipient may keep it."""


class Agreement(_Strict):
    """An information-sharing agreement: the partner receives only under one in force.

    Dates are UK calendar days (Europe/London): the agreement is in force from the start of
    ``starts`` to the end of ``expires``, both judged on the UK date of the moment asked about.
    """

    id: str = Field(min_length=1)
    parties: list[str] = Field(default_factory=list)
    """The organisations that signed it (the broker operator and the partner)."""
    purposes: list[Purpose] = Field(min_length=1)
    basis: ProcessingBasis | None = None
    """The lawful basis of the disclosure. Absent for a competent authority (DPA 2018 Part 3
    law-enforcement processing); required for any other partner (e.g. ``consent``)."""
    event_types: list[str] | None = None
    """Event types in scope; absent means every type the partner subscribes to."""
    views: list[Name] | None = None
    """Views in scope; absent means any view a rule grants."""
    starts: date | None = None
    expires: date
    conditions: Conditions = Field(default_factory=Conditions)

    def uk_date(self, now: datetime) -> date:
        """The UK calendar date of ``now`` (an aware datetime)."""
        return now.astimezone(UK_TIME).date()

    def live(self, now: datetime) -> bool:
        """Whether the agreement is in force on ``now``'s UK date (both end days included)."""
        today = self.uk_date(now)
        return (self.starts is None or self.starts <= today) and today <= self.expires

    def not_yet(self, now: datetime) -> bool:
        """Whether the agreement starts after ``now``'s UK date."""
        return self.starts is not None and self.uk_date(now) < self.starts


class Transfer(_Strict):
    """How a transfer to this partner outside the UK is lawful (DPA 2018 ss.73-76).

    The basis is the partner's own, never a rule's: adequacy is accepted only for a country on
    the shipped adequacy list, appropriate safeguards only with the instrument that provides
    them, and special circumstances only case by case (every such transfer is held).
    """

    basis: TransferBasis
    relevant_authority: bool
    instrument: str | None = None
    """The legally binding instrument or assessment giving appropriate safeguards (s.75(1))."""
    justification: str | None = None
    """Why the transfer is necessary (documented with every transfer, ss.75(3), 76(3))."""


class Subscriptions(_Strict):
    """What a partner asked to receive; filters narrow it (used for liaison points)."""

    event_types: list[str] = Field(min_length=1)
    countries: list[Country] | None = None
    exploitation_types: list[str] | None = None


class Partner(_Strict):
    """One recipient in the registry."""

    id: Name
    kind: PartnerKind
    jurisdiction: Country
    clearance: Classification
    subscriptions: Subscriptions
    agreement: Agreement | None = None
    transfer: Transfer | None = None
    organisation: Name | None = None
    groups: list[Name] = Field(default_factory=list)
    originates: list[str] | None = None
    """Event types this agency may publish; anything else is quarantined as ``not-permitted``.
    Absent: not restricted (policies written before the table existed); ``msht policy check``
    reports every partner without one."""
    receives_own_events: bool = False
    """Whether a rule may send the partner its own events back (no echo by default)."""
    siena: bool = False
    """Whether the partner's input comes through Europol SIENA (so must carry a handling code)."""

    @property
    def overseas(self) -> bool:
        """Whether delivering to this partner is a transfer outside the UK."""
        return self.jurisdiction != UK

    @property
    def org(self) -> str:
        """The organisation the partner belongs to (its own id unless stated)."""
        return self.organisation or self.id


class Reviewer(_Strict):
    """A person (or desk) who decides held events: releases or refuses them for a partner.

    Their Ed25519 and X25519 keys are in the trust store under ``id`` like any agency's
    (``msht keys generate --agency <id>``); held records are sealed to the X25519 key and
    decisions are signed with the Ed25519 key (docs/REVIEW.md).
    """

    id: Name
    description: str = ""
    guards: list[str] = Field(min_length=1)
    """The holding guards (``guard:hold-h3``, ...) whose holds this reviewer may decide."""
    partners: list[Name] | None = None
    """The partners (or groups) they may decide for; omitted means every partner."""

    def may_decide(self, policy: Policy, guard: str, partner: str) -> bool:
        """Whether this reviewer may release or refuse a hold by ``guard`` for ``partner``."""
        if guard not in self.guards:
            return False
        return self.partners is None or partner in policy.expand(self.partners)


class View(_Strict):
    """What a recipient sees: fields removed, masked or sealed by sensitivity tag or by path."""

    description: str = ""
    remove_tags: list[str] = Field(default_factory=list)
    mask_tags: list[str] = Field(default_factory=list)
    remove_fields: list[str] = Field(default_factory=list)
    mask_fields: list[str] = Field(default_factory=list)
    seal_tags: list[str] = Field(default_factory=list)
    """Kept, but encrypted so that only the recipient can open them (string fields only;
    any other field selected for sealing is removed instead)."""
    seal_fields: list[str] = Field(default_factory=list)
    remove_roles: list[str] = Field(default_factory=list)
    """Remove every field about these people (``suspect``, ``witness``, ``staff``,
    ``reporter``, ``mixed``, ``victim``: the schemas' ``msht.person``), whatever its tags."""


class Match(_Strict):
    """Event attributes a rule applies to; an absent attribute matches anything.

    List attributes match when the event's value is one of the listed values; ``countries``
    and ``exploitation_types`` match when the event involves any of the listed ones.
    """

    event_types: list[str] | None = None
    sources: list[str] | None = None
    classifications: list[Classification] | None = None
    max_classification: Classification | None = None
    siena_handling: list[SienaHandling] | None = None
    grading_handling: list[GradingHandling] | None = None
    tlp: list[Tlp] | None = None
    victim_age_groups: list[AgeGroup] | None = None
    victim_consent: list[Consent] | None = None
    """``yes``, ``no`` or ``none`` (not recorded); YAML's bare yes/no booleans are accepted."""
    countries: list[Country] | None = None
    exploitation_types: list[str] | None = None

    @field_validator("victim_consent", mode="before")
    @classmethod
    def _yaml_booleans(cls, value: Any) -> Any:
        # YAML 1.1 reads a bare `yes` or `no` as a boolean.
        if isinstance(value, list):
            return [("yes" if v else "no") if isinstance(v, bool) else v for v in value]
        return value

    def allowed_classifications(self) -> frozenset[Classification]:
        """Every classification an event may carry and still match this rule."""
        allowed = set(self.classifications or Classification)
        if self.max_classification is not None:
            ceiling = self.max_classification.rank
            allowed = {c for c in allowed if c.rank <= ceiling}
        return frozenset(allowed)


class Deliver(_Strict):
    """Grant: send to these partners or groups, in this view, on this transfer basis."""

    to: list[Name] = Field(min_length=1)
    view: Name
    basis: TransferBasis | None = None


class Deny(_Strict):
    """Refuse, with a reason, to the listed partners or groups (to everyone when absent)."""

    reason: str = Field(min_length=1)
    partners: list[Name] | None = None


class Rule(_Strict):
    """One ordered rule: a match, then exactly one of ``deliver`` or ``deny``."""

    id: Name
    description: str = ""
    match: Match = Field(default_factory=Match)
    deliver: Deliver | None = None
    deny: Deny | None = None


class Policy(_Strict):
    """A whole policy file."""

    version: str = Field(min_length=1)
    name: str = ""
    partners: list[Partner] = Field(min_length=1)
    views: dict[Name, View] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
    reviewers: list[Reviewer] = Field(default_factory=list)

    def reviewer(self, reviewer_id: str) -> Reviewer | None:
        """The reviewer with this id, if any."""
        for r in self.reviewers:
            if r.id == reviewer_id:
                return r
        return None

    def partner(self, partner_id: str) -> Partner | None:
        """The registry entry with this id, if any."""
        for p in self.partners:
            if p.id == partner_id:
                return p
        return None

    def groups(self) -> dict[str, frozenset[str]]:
        """Each group name mapped to the ids of its member partners."""
        members: dict[str, set[str]] = {}
        for p in self.partners:
            for g in p.groups:
                members.setdefault(g, set()).add(p.id)
        return {g: frozenset(ids) for g, ids in members.items()}

    def expand(self, names: Sequence[str]) -> frozenset[str]:
        """Partner ids named directly or through a group (unknown names are ignored)."""
        groups = self.groups()
        ids = {p.id for p in self.partners}
        out: set[str] = set()
        for n in names:
            if n in ids:
                out.add(n)
            out |= groups.get(n, frozenset())
        return frozenset(out)


@dataclass(frozen=True)
class LoadedPolicy:
    """A validated policy together with the digest of the bytes it was read from."""

    policy: Policy
    version: str
    """``sha256:<hex>`` of the policy file's bytes: the policy version decisions cite."""
    source: str


def policy_digest(data: bytes) -> str:
    """The policy version of a file: ``sha256:`` and the hex SHA-256 of its bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def load_policy(path: Path) -> LoadedPolicy:
    """Read and validate a policy file; raise :class:`PolicyError` listing every problem."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror}") from exc
    return parse_policy(data, source=str(path))


def parse_policy(data: bytes, source: str = "<policy>") -> LoadedPolicy:
    """Validate policy YAML bytes; raise :class:`PolicyError` listing every problem."""
    try:
        raw = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = f"{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})"
        raise PolicyError(f"{source}: {problem}", [problem]) from exc
    if not isinstance(raw, dict):
        problem = "(top level): must be a mapping with partners, views and rules"
        raise PolicyError(f"{source}: {problem}", [problem])
    try:
        policy = Policy.model_validate(raw)
    except ValidationError as exc:
        problems = [_describe(err, raw) for err in exc.errors()]
        raise PolicyError(_summary(source, problems), problems) from exc
    problems = _consistency_problems(policy)
    if problems:
        raise PolicyError(_summary(source, problems), problems)
    return LoadedPolicy(policy=policy, version=policy_digest(data), source=source)


def _summary(source: str, problems: Sequence[str]) -> str:
    return f"{source}: {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems)


def _describe(err: Mapping[str, Any], raw: Mapping[str, Any]) -> str:
    """``partners[2] (ilo-xx).clearance: Input should be ...`` from one pydantic error."""
    parts: list[str] = []
    node: Any = raw
    for key in err["loc"]:
        if isinstance(key, int):
            label = f"[{key}]"
            if isinstance(node, list) and key < len(node):
                node = node[key]
                if isinstance(node, dict) and isinstance(node.get("id"), str):
                    label += f" ({node['id']})"
            parts.append(label)
        else:
            parts.append(f".{key}" if parts else str(key))
            node = node.get(key) if isinstance(node, dict) else None
    where = "".join(parts) or "(top level)"
    return f"{where}: {err['msg']}"


def _agreement_problems(p: Partner, where: str) -> list[str]:
    """An agreement's basis must suit the partner; a transfer's basis must be documented."""
    problems: list[str] = []
    a = p.agreement
    competent = p.kind in COMPETENT_AUTHORITY_KINDS
    if a is not None:
        for name in a.event_types or ():
            if name not in EVENT_TYPES:
                problems.append(f"{where}.agreement.event_types: unknown event type {name!r}")
        if a.starts is not None and a.starts > a.expires:
            problems.append(f"{where}.agreement: starts after it expires")
        if not competent and a.basis is ProcessingBasis.LAW_ENFORCEMENT:
            problems.append(
                f"{where}.agreement.basis: a {p.kind.value} is not a competent authority "
                "(DPA 2018 s.30); name its UK GDPR basis"
            )
    transfer = p.transfer
    if (
        transfer is not None
        and transfer.basis is TransferBasis.APPROPRIATE_SAFEGUARDS
        and not transfer.instrument
    ):
        problems.append(
            f"{where}.transfer.instrument: appropriate safeguards need the instrument that "
            "provides them (DPA 2018 s.75(1))"
        )
    return problems


def _consistency_problems(policy: Policy) -> list[str]:
    """Problems pydantic cannot see: duplicates, name clashes, unknown event types."""
    problems: list[str] = []
    seen: set[str] = set()
    for i, p in enumerate(policy.partners):
        where = f"partners[{i}] ({p.id})"
        if p.id in seen:
            problems.append(f"{where}.id: duplicate partner id {p.id!r}")
        seen.add(p.id)
        for t in p.subscriptions.event_types:
            if t not in EVENT_TYPES:
                problems.append(f"{where}.subscriptions.event_types: unknown event type {t!r}")
        for t in p.originates or ():
            if t not in EVENT_TYPES:
                problems.append(f"{where}.originates: unknown event type {t!r}")
        problems += _agreement_problems(p, where)
    for g in policy.groups():
        if g in seen:
            problems.append(f"groups: group name {g!r} is also a partner id")
    rule_ids: set[str] = set()
    for i, r in enumerate(policy.rules):
        where = f"rules[{i}] ({r.id})"
        if r.id in rule_ids:
            problems.append(f"{where}.id: duplicate rule id {r.id!r}")
        rule_ids.add(r.id)
        if (r.deliver is None) == (r.deny is None):
            problems.append(f"{where}: needs exactly one of 'deliver' or 'deny'")
        for t in r.match.event_types or ():
            if t not in EVENT_TYPES:
                problems.append(f"{where}.match.event_types: unknown event type {t!r}")
        if r.match.event_types == [] or r.match.sources == []:
            problems.append(f"{where}.match: an empty list matches nothing; omit it to match all")
    problems += _reviewer_problems(policy, seen)
    return problems


HOLDING_GUARDS = frozenset(
    {"guard:hold-h3", "guard:hold-3x5x2-C", "guard:hold-dpa-s76", "guard:hold-siena-unmarked"}
)
"""The names of the holding guards a reviewer may be given (``broker.policy.guards``'s
``HOLD_GUARDS``; a unit test keeps the two equal)."""


def _reviewer_problems(policy: Policy, partner_ids: set[str]) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    names = partner_ids | set(policy.groups())
    for i, r in enumerate(policy.reviewers):
        where = f"reviewers[{i}] ({r.id})"
        if r.id in seen:
            problems.append(f"{where}.id: duplicate reviewer id {r.id!r}")
        if r.id in partner_ids:
            problems.append(f"{where}.id: {r.id!r} is also a partner id")
        seen.add(r.id)
        for g in r.guards:
            if g not in HOLDING_GUARDS:
                problems.append(
                    f"{where}.guards: {g!r} is not a holding guard "
                    f"(one of {', '.join(sorted(HOLDING_GUARDS))})"
                )
        for n in r.partners or ():
            if n not in names:
                problems.append(f"{where}.partners: {n!r} is no partner or group")
    return problems
