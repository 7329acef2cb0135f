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
    TransferBasis,
    normalise_country,
)
from broker.policy.facts import EventFacts, PersonFacts
from broker.policy.lawful import COMPETENT_AUTHORITY_KINDS, ProcessingBasis, adequacy_list
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


def agreement(c: Context) -> str | None:
    """Every partner, UK or abroad, receives only under an information-sharing agreement that
    covers this event type and view and names a lawful basis the event satisfies."""
    a, p = c.partner.agreement, c.partner
    if a is None:
        return f"no information-sharing agreement with {p.id}"
    if a.event_types is not None and c.facts.event_type not in a.event_types:
        return f"agreement {a.id} does not cover {c.facts.event_type}"
    if a.views is not None and c.deliver.view not in a.views:
        return f"agreement {a.id} does not cover view {c.deliver.view!r}"
    if p.kind not in COMPETENT_AUTHORITY_KINDS and a.basis is None:
        return (
            f"agreement {a.id} names no lawful basis for {p.id}, which is not a competent "
            "authority (DPA 2018 s.30)"
        )
    if a.basis is ProcessingBasis.CONSENT and c.facts.victim_consent is not Consent.YES:
        return f"agreement {a.id} rests on consent, which this event does not record"
    return None


def agreement_expired(c: Context) -> str | None:
    """No delivery under an agreement not in force on the UK date (expired or not started)."""
    a = c.partner.agreement
    if a is None or a.live(c.now):
        return None
    if a.not_yet(c.now):
        assert a.starts is not None  # not_yet implies a start date
        return f"information-sharing agreement {a.id} starts on {a.starts.isoformat()}"
    return f"information-sharing agreement {a.id} expired on {a.expires.isoformat()}"


def dpa_s73(c: Context) -> str | None:
    """A transfer outside the UK needs the partner's own checked basis and a relevant authority.

    Adequacy only for a country on the shipped adequacy list (s.74AA); appropriate safeguards
    only with the instrument that provides them (s.75); special circumstances pass here and
    are held by :func:`hold_s76`. A rule that asserts another basis than the partner's is
    refused: the basis is a fact about the partner, not a setting of a rule.
    """
    p = c.partner
    if not p.overseas:
        return None
    t = p.transfer
    if t is None:
        return f"transfer to {p.jurisdiction} has no basis (DPA 2018 s.73(3))"
    if not t.relevant_authority:
        return f"{p.id} is not a relevant law-enforcement authority (DPA 2018 s.73(4))"
    if c.deliver.basis is not None and c.deliver.basis is not t.basis:
        return (
            f"rule asserts transfer basis {c.deliver.basis.value} but {p.id}'s basis is "
            f"{t.basis.value}"
        )
    if t.basis is TransferBasis.ADEQUACY:
        listed = adequacy_list()
        if not listed.covers(p.jurisdiction):
            return (
                f"{p.jurisdiction} is not on the adequacy list of "
                f"{listed.as_of.isoformat()} (DPA 2018 s.74AA)"
            )
    if t.basis is TransferBasis.APPROPRIATE_SAFEGUARDS and not t.instrument:
        return "appropriate safeguards named without the instrument (DPA 2018 s.75(1))"
    return None


def eu_origin(c: Context) -> str | None:
    """Data an EU state provided goes abroad only where that state authorised it."""
    raw, p = c.facts.origin_country, c.partner
    if raw is None or not p.overseas:
        return None
    origin = normalise_country(raw)
    if origin is not None and origin not in EU_MEMBER_STATES:
        return None
    # An unknown origin code (NLD, XX) could be an EU state's: read it as the most restrictive.
    if p.jurisdiction == origin or p.id in c.facts.origin_authorised_recipients:
        return None
    if origin is None:
        return (
            f"origin country {raw!r} is not an ISO 3166-1 alpha-2 code, so it is read as an EU "
            f"state that has not authorised the transfer to {p.id} (DPA 2018 s.73(1)(b))"
        )
    return (
        f"data from {origin}, which has not authorised its transfer to {p.id} (DPA 2018 s.73(1)(b))"
    )


def siena_h2(c: Context) -> str | None:
    """SIENA H2: no dissemination beyond the originator's own intended recipients."""
    if c.facts.siena_handling is SienaHandling.H2 and not _named(c):
        return "SIENA H2: not an intended recipient named by the originator"
    return None


def siena_h0(c: Context) -> str | None:
    """SIENA H0: for law-enforcement purposes only, so never to a body that is not a
    competent authority (a support provider or other NGO)."""
    if c.facts.siena_handling is SienaHandling.H0 and (
        c.partner.kind not in COMPETENT_AUTHORITY_KINDS
    ):
        return "SIENA H0: law-enforcement purposes only; the partner is not law enforcement"
    return None


def siena_h1(c: Context) -> str | None:
    """SIENA H1: not for judicial proceedings, so not to prosecutors or courts unless the
    provider authorised the recipient."""
    if (
        c.facts.siena_handling is SienaHandling.H1
        and c.partner.kind in (PartnerKind.PROSECUTOR, PartnerKind.COURT)
        and c.partner.id not in c.facts.origin_authorised_recipients
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
    ("guard:agreement", agreement),
    ("guard:agreement-expired", agreement_expired),
    ("guard:dpa-s73", dpa_s73),
    ("guard:eu-origin", eu_origin),
    ("guard:siena-h0", siena_h0),
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


def hold_siena_unmarked(c: Context) -> str | None:
    """A message that came through SIENA without a handling code: its restrictions are
    unknown, so a person decides (a missing marking is read as the most restrictive)."""
    if c.facts.siena_handling is not SienaHandling.NONE:
        return None
    source = c.policy.partner(c.facts.source)
    if (source is not None and source.siena) or c.facts.siena_restrictions:
        return "SIENA message without a handling code: restrictions unknown, a person decides"
    return None


def hold_s76(c: Context) -> str | None:
    """DPA 2018 s.76 special circumstances are never a standing basis: each transfer on them
    is held for a person to judge and document (s.76(3))."""
    t = c.partner.transfer
    if c.partner.overseas and t is not None and t.basis is TransferBasis.SPECIAL_CIRCUMSTANCES:
        return "transfer on special circumstances (DPA 2018 s.76): decided case by case"
    return None


HOLD_GUARDS: tuple[tuple[str, Guard], ...] = (
    ("guard:hold-h3", hold_h3),
    ("guard:hold-siena-unmarked", hold_siena_unmarked),
    ("guard:hold-3x5x2-C", hold_3x5x2_c),
    ("guard:hold-dpa-s76", hold_s76),
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
