"""The demo's story: which agency sends which example file, in which act, and what must follow.

Act 1: the Metropolitan Police sends referrals (NRM, a child's NRM, a Duty to Notify
report, a CSV export with a second CSV whose bad rows its adapter refuses) and case updates
(arrest, charge, file submitted, and a charge with two victims: a child, and an adult who did
not consent, whom no partner may identify while the child and the suspect stay visible).
The NCA sends a diffusion alert abroad, which the Dutch liaison point receives with
identities (Part 3 processing, transferred under the adequacy regulations, the transfer
documented in the audit) and which is held for the third-country one (special
circumstances, DPA 2018 s.76, are judged case by case). The Dutch liaison point sends an
alert marked SIENA H3, which the router holds for a human
decision (for the police and the NCA).
Act 2: once the CPS has the case updates in its outbox as CPS XML, it sends back a
charging decision and a hearing outcome (and a malformed and a hostile XML file, which its
adapter refuses). Someone holding the police's key forges a CPS charging decision: the
router quarantines it.
Review: the reviewer the policy allows to decide SIENA H3 holds (the duty officer) releases
the held alert for the NCA and refuses it for the police with signed decisions; the router
carries both out (the NCA receives the alert once, the police never) and the Dutch liaison
point is told: held, released, refused. The transfer to the third country stays held, open.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from broker.demo.observed import (
    Expectation,
    granted_view,
    held_for,
    held_for_review,
    quarantined_forgery,
    receives,
    receives_nothing_of,
    refused_never_delivered,
    rejected_from,
    released_once,
    renders_people,
    told,
)
from broker.errors import ConfigError
from broker.policy.model import Policy
from broker.review.decision import Verdict

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "examples"
"""The example native files the agencies send (``deploy/examples`` in the checkout)."""

POLICY = Path(__file__).resolve().parents[2] / "deploy" / "policy.yaml"
"""The policy the demo's router applies."""


@dataclass(frozen=True)
class Send:
    """One agency sending one native file through its publisher."""

    agency: str
    file: str
    """Path under :data:`EXAMPLES`."""
    shows: str


ACT_ONE: tuple[Send, ...] = (
    Send("met-police", "police/nrm-referral.json", "an adult victim's NRM referral"),
    Send("met-police", "police/nrm-referral-child.json", "a child's NRM referral"),
    Send("met-police", "police/dtn-report.json", "a Duty to Notify report"),
    Send("met-police", "police/referrals.csv", "a CSV export of referrals"),
    Send(
        "met-police",
        "police/referrals-with-bad-rows.csv",
        "the export again, with bad rows (the good rows are re-publications)",
    ),
    Send("met-police", "police/case-arrest.json", "case update: arrest"),
    Send("met-police", "police/case-charge.json", "case update: charge"),
    Send(
        "met-police",
        "police/case-charge-two-victims.json",
        "case update: a charge with a child victim and an adult who did not consent",
    ),
    Send("met-police", "police/case-file-submitted.json", "case update: file submitted"),
    Send("nca", "overseas/diffusion-outbound.json", "a diffusion alert to liaison points"),
    Send(
        "nca",
        "overseas/diffusion-urgent-br.json",
        "an urgent alert a third country may receive only on special circumstances",
    ),
    Send("ilo-nl", "overseas/alert-inbound.xml", "an inbound alert marked SIENA H3"),
)

ACT_TWO: tuple[Send, ...] = (
    Send("cps", "cps/charging-decision.xml", "the charging decision"),
    Send("cps", "cps/hearing-outcome.xml", "the hearing outcome"),
    Send("cps", "cps/charging-decision.bad.xml", "a malformed charging decision"),
    Send("cps", "cps/external-entity.attack.xml", "XML with an external entity (XXE)"),
)

CPS_WAITS_FOR = ("case.arrest", "case.charge", "case.file_submitted")
"""The case updates the CPS must have in its outbox before it answers."""

FORGERY = Send(
    "cps",
    "cps/charging-decision.xml",
    "a CPS charging decision changed to 'no further action', signed with the police's key",
)
FORGER = "met-police"
"""Whose key signs the forgery."""


def forged_document(original: bytes) -> bytes:
    """The charging decision with its outcome changed to no further action."""
    forged = original.replace(b"<Outcome>charge</Outcome>", b"<Outcome>nfa</Outcome>")
    if forged == original:
        raise ValueError("the example charging decision no longer has <Outcome>charge</Outcome>")
    return forged


@dataclass(frozen=True)
class Review:
    """A reviewer's decision on the hold of one event for one partner."""

    event_type: str
    source: str
    partner: str
    verdict: Verdict
    reason: str


REVIEWS: tuple[Review, ...] = (
    Review(
        "alert.inbound",
        "ilo-nl",
        "nca",
        Verdict.RELEASE,
        "Europol confirmed the NCA may act on the alert within its restrictions",
    ),
    Review(
        "alert.inbound",
        "ilo-nl",
        "met-police",
        Verdict.REFUSE,
        "the originator's restriction is not met for the police",
    ),
)
"""The decisions taken once act two has settled, in order."""


def reviewer_for(policy: Policy, guard: str, partner: str) -> str:
    """The first reviewer the policy allows to decide ``guard`` holds for ``partner``."""
    for reviewer in policy.reviewers:
        if reviewer.may_decide(policy, guard, partner):
            return reviewer.id
    raise ConfigError(f"reviewers: the policy names none who may decide {guard} for {partner}")


PUBLISHERS: tuple[str, ...] = tuple(dict.fromkeys(s.agency for s in (*ACT_ONE, *ACT_TWO)))
"""Every agency that publishes (each needs an ingress topic)."""

EXPECTATIONS: tuple[Expectation, ...] = (
    receives("cps", "case.charge", "cps-xml"),
    # One decision per person: the adult who did not consent is hidden from the CPS, which
    # still reads the child victim and the suspect (MSA 2015 s.52(3)).
    renders_people(
        "cps",
        "case.charge",
        "01MP7654326",
        shown=("Kappa", "Zeta"),
        hidden=("Lambda", "Adultname", "5c12"),
    ),
    receives("met-police", "case.charging_decision"),
    receives("met-police", "case.hearing_outcome"),
    receives("ilo-nl", "alert.outbound"),
    granted_view("ilo-nl", "alert.outbound", "full", "law_enforcement", "adequacy"),
    receives_nothing_of("ilo-xx", "alert.outbound"),
    held_for("ilo-xx", "alert.outbound", "guard:hold-dpa-s76"),
    held_for_review("alert.inbound", "ilo-nl", ("met-police", "nca")),
    released_once("alert.inbound", "ilo-nl", "nca"),
    refused_never_delivered("alert.inbound", "ilo-nl", "met-police"),
    told("ilo-nl", "alert.inbound", ("held", "released", "refused")),
    quarantined_forgery(),
    rejected_from("met-police", "referrals-with-bad-rows.csv"),
    rejected_from("cps", "charging-decision.bad.xml"),
    rejected_from("cps", "external-entity.attack.xml"),
)
"""What the story must show with deploy/policy.yaml; the demo fails if any does not hold."""
