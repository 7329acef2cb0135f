"""The statutory guards: hard-coded checks applied after the rules, which no rule can override.

Each guard names itself (``guard:<name>``) in decisions and audit records. Three families:

* withholding guards (:data:`WITHHOLD_GUARDS`) — the partner gets nothing;
* view guards — :func:`person_guards` removes one protected person's data (a victim who
  may not be identified), :func:`identity_guards` every identity field (a transfer abroad);
* holding guards (:data:`HOLD_GUARDS`) — the event waits for a human decision.

The legal basis of each is in ``docs/POLICY.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from broker.events.markings import (
    EU_MEMBER_STATES,
    AgeGroup,
    Consent,
    GradingHandling,
    PartnerKind,
    SienaHandling,
    Tlp,
)
from broker.policy.facts import EventFacts, PersonFacts
from broker.policy.model import Deliver, Partner, Policy


@dataclass(frozen=True)
class Context:
    """Everything a guard may consult about one partner and one event."""

    policy: Policy
    partner: Partner
    facts: EventFacts
    deliver: Deliver
    now: datetime


Guard = Callable[[Context], str | None]
"""A guard returns ``None`` when it lets the delivery pass, else the reason it does not."""


def clearance(c: Context) -> str | None:
    """Never send above the partner's clearance."""
    if c.facts.classification.rank > c.partner.clearance.rank:
        return (
            f"event is {c.facts.classification.value}, partner is cleared to "
            f"{c.partner.clearance.value}"
        )
    return None


def agreement_expired(c: Context) -> str | None:
    """No delivery under a data-sharing agreement that has expired."""
    a = c.partner.agreement
    if a is not None and not a.live(c.now):
        return f"data-sharing agreement {a.id} expired on {a.expires.isoformat()}"
    return None


def dpa_s73(c: Context) -> str | None:
    """A transfer outside the UK needs a basis, a live agreement and a relevant authority."""
    p = c.partner
    if not p.overseas:
        return None
    if p.transfer is None:
        return f"transfer to {p.jurisdiction} has no basis (DPA 2018 s.73(3))"
    if not p.transfer.relevant_authority:
        return f"{p.id} is not a relevant law-enforcement authority (DPA 2018 s.73(4))"
    if p.agreement is None:
        return f"no data-sharing agreement with {p.id} for a transfer to {p.jurisdiction}"
    return None


def eu_origin(c: Context) -> str | None:
    """Data an EU state provided goes abroad only where that state authorised it."""
    origin, p = c.facts.origin_country, c.partner
    if origin is None or origin not in EU_MEMBER_STATES or not p.overseas:
        return None
    if p.jurisdiction == origin or p.id in c.facts.origin_authorised_recipients:
        return None
    return (
        f"data from {origin}, which has not authorised its transfer to {p.id} (DPA 2018 s.73(1)(b))"
    )


def siena_h2(c: Context) -> str | None:
    """SIENA H2: no dissemination beyond the originator's own intended recipients."""
    if c.facts.siena_handling is SienaHandling.H2 and not _named(c):
        return "SIENA H2: not an intended recipient named by the originator"
    return None


def siena_h1(c: Context) -> str | None:
    """SIENA H1: not for judicial proceedings, so not to prosecutors or courts."""
    if c.facts.siena_handling is SienaHandling.H1 and c.partner.kind in (
        PartnerKind.PROSECUTOR,
        PartnerKind.COURT,
    ):
        return "SIENA H1: not to be used in judicial proceedings without the provider's permission"
    return None


def tlp_red(c: Context) -> str | None:
    """TLP:RED goes only to the recipients the originator named."""
    if c.facts.tlp is Tlp.RED and not _named(c):
        return "TLP:RED: not a named recipient"
    return None


def tlp_amber_strict(c: Context) -> str | None:
    """TLP:AMBER+STRICT stays within the recipient organisation.

    The recipient organisation is that of the originator's intended recipients, or the
    originator's own organisation when it named none.
    """
    if c.facts.tlp is not Tlp.AMBER_STRICT:
        return None
    orgs = (
        _organisations(c.policy, c.facts.intended_recipients)
        or _organisations(c.policy, {c.facts.source})
        or {c.facts.source}
    )
    if c.partner.org in orgs:
        return None
    return "TLP:AMBER+STRICT: outside the recipient organisation " + ", ".join(sorted(orgs))


def _named(c: Context) -> bool:
    return c.partner.id in c.facts.intended_recipients


def _organisations(policy: Policy, ids: frozenset[str] | set[str]) -> set[str]:
    return {p.org for p in policy.partners if p.id in ids}


WITHHOLD_GUARDS: tuple[tuple[str, Guard], ...] = (
    ("guard:clearance", clearance),
    ("guard:agreement-expired", agreement_expired),
    ("guard:dpa-s73", dpa_s73),
    ("guard:eu-origin", eu_origin),
    ("guard:siena-h2", siena_h2),
    ("guard:siena-h1", siena_h1),
    ("guard:tlp-red", tlp_red),
    ("guard:tlp-amber-strict", tlp_amber_strict),
)
"""Guards that withhold the event from the partner, in the order they are reported."""


def hold_h3(c: Context) -> str | None:
    """SIENA H3 carries free-text restrictions only a person can read and apply."""
    if c.facts.siena_handling is SienaHandling.H3:
        text = c.facts.siena_restrictions or "(no text given)"
        return f"SIENA H3 restrictions need a human decision: {text}"
    return None


def hold_3x5x2_c(c: Context) -> str | None:
    """3x5x2 handling code C: shared only with conditions, so a person decides."""
    if c.facts.grading_handling is GradingHandling.C:
        return "3x5x2 handling code C: share only with conditions decided by a person"
    return None


HOLD_GUARDS: tuple[tuple[str, Guard], ...] = (
    ("guard:hold-h3", hold_h3),
    ("guard:hold-3x5x2-C", hold_3x5x2_c),
)
"""Guards that hold an otherwise deliverable event for a human decision."""


MSA_S52 = "guard:msa-s52"
MSA_S52_LAW = "MSA 2015 s.52(3)"


def person_guards(c: Context) -> list[tuple[str, PersonFacts, str]]:
    """The people whose data must be withheld from this partner, each with the guard and a
    plain sentence saying what is removed and why.

    Only the protected person's own fields go (identity, contact, linking identifiers,
    narrative and special-category data about them); suspects, defendants, witnesses and
    staff keep theirs, and so do other victims.
    """
    out: list[tuple[str, PersonFacts, str]] = []
    for p in c.facts.protected_persons:
        age = {
            AgeGroup.ADULT: "adult",
            AgeGroup.UNKNOWN: "age unknown, read as adult",
        }.get(p.age_group, str(p.age_group.value))
        consent = "consent refused" if p.consent is Consent.NO else "no recorded consent"
        out.append(
            (
                MSA_S52,
                p,
                f"{p.label}: identity, contact, linking references and account removed: "
                f"{age}, {consent} — {MSA_S52_LAW}",
            )
        )
    return out


MIXED_SENTENCE = (
    "narratives and references about several people removed: they also concern a victim "
    f"who may not be identified and cannot be split — {MSA_S52_LAW}"
)


def identity_guards(c: Context) -> list[tuple[str, str]]:
    """View guards that require every identity field to be withheld, with their reasons.

    The consent gate is per person (:func:`person_guards`); this is what still removes all
    identity: a transfer abroad the rule does not name with a basis.
    """
    out: list[tuple[str, str]] = []
    if not c.facts.carries_identity:
        return out
    named_with_basis = c.partner.id in c.deliver.to and c.deliver.basis is not None
    if c.partner.overseas and not named_with_basis:
        out.append(
            (
                "guard:identity-abroad",
                "identity leaves the UK only where a rule names the partner and the basis",
            )
        )
    return out
