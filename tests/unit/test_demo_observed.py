"""What the demo counts as done: every input decided, every grant rendered, the chain intact."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from broker.audit import GENESIS_DIGEST, AuditRecord, ChainBreak, ChainReport, RecipientOutcome
from broker.audit.record import RecordKind
from broker.crypto.view_check import ORIGINATOR_AND_ROUTER
from broker.demo.observed import (
    NoticeSeen,
    Observed,
    PublishedInput,
    QuarantinedInput,
    RejectedInput,
    RenderedFile,
    ReviewSent,
    evaluate,
    granted_view,
    held_for_review,
    missing,
    quarantined_forgery,
    receives,
    receives_nothing_of,
    refused_never_delivered,
    rejected_from,
    released_once,
    told,
)
from broker.review.closing import decision_id, statement
from broker.review.held import hold_id_of
from broker.types import AgencyId, EventId, Outcome, PartnerId, Subject

PARTNERS = ("cps", "ilo-nl", "ilo-xx")
TOPIC = "demo-20261128100000-abcd.ingress.met-police"


def _published(
    event_id: str,
    offset: int,
    event_type: str = "case.charge",
    *,
    agency: str = "met-police",
    file: str = "case-charge.json",
    forged: bool = False,
) -> PublishedInput:
    return PublishedInput(agency, file, None, event_id, event_type, TOPIC, 0, offset, forged)


def _outcome(
    partner: str, outcome: Outcome, rule: str, view: str | None = None, basis: str | None = None
) -> RecipientOutcome:
    return RecipientOutcome(PartnerId(partner), outcome, rule, view, basis, "because")


def _record(
    event_id: str,
    offset: int,
    *outcomes: RecipientOutcome,
    kind: RecordKind = "decision",
    topic: str = TOPIC,
) -> AuditRecord:
    return AuditRecord(
        chain=f"{topic}/0",
        seq=offset,
        time=datetime(2026, 11, 28, tzinfo=UTC),
        kind=kind,
        event_id=EventId(event_id),
        source=AgencyId("met-police"),
        subject=Subject("01MP1234526"),
        input_offset=offset,
        outcomes=outcomes,
        policy_version="sha256:00",
        router="demo",
        prev_digest=GENESIS_DIGEST,
        digest="0" * 64,
    )


def _intact(records: int) -> ChainReport:
    return ChainReport(records=records, heads={}, breaks=())


def _complete() -> Observed:
    """A run where met-police's charge reached the CPS and everything was recorded."""
    observed = Observed(partners=PARTNERS)
    observed.published.append(_published("e1", 0))
    observed.audit.append(
        _record("e1", 0, _outcome("cps", Outcome.DELIVER, "case-updates", "full"))
    )
    observed.rendered.append(
        RenderedFile("cps", "e1", "case.charge", "cps-xml", None, ORIGINATOR_AND_ROUTER)
    )
    observed.chain = _intact(1)
    return observed


def test_a_run_where_everything_happened_misses_nothing() -> None:
    assert missing(_complete()) == []


def test_an_input_without_an_audit_record_is_missing() -> None:
    observed = _complete()
    observed.published.append(_published("e2", 1))
    observed.chain = _intact(2)
    assert missing(observed) == [
        "the router wrote no audit record for event e2 (case.charge from met-police, "
        "case-charge.json)"
    ]


def test_an_audit_record_for_another_offset_does_not_settle_an_input() -> None:
    observed = _complete()
    observed.published.append(_published("e1", 1))
    assert observed.unsettled() == [observed.published[1]]


def test_a_republished_input_is_settled_by_its_duplicate_record() -> None:
    observed = _complete()
    observed.published.append(_published("e1", 1))
    observed.audit.append(_record("e1", 1, kind="duplicate"))
    observed.chain = _intact(2)
    assert missing(observed) == []


def test_a_grant_no_subscriber_rendered_is_missing() -> None:
    observed = _complete()
    observed.rendered.clear()
    assert missing(observed) == ["cps's subscriber never rendered event e1, granted to it"]


def test_a_rendering_the_router_never_granted_is_reported() -> None:
    observed = _complete()
    observed.rendered.append(
        RenderedFile("ilo-xx", "e1", "case.charge", "alert-xml", None, ORIGINATOR_AND_ROUTER)
    )
    assert missing(observed) == ["ilo-xx rendered event e1, which the router never granted it"]


def test_a_view_not_verified_against_its_originator_is_missing() -> None:
    observed = _complete()
    observed.rendered[0] = RenderedFile("cps", "e1", "case.charge", "cps-xml", None, "router only")
    assert missing(observed) == [
        "cps's view of event e1 was not verified against its originating agency's signature "
        "(router only)"
    ]


def test_a_broken_audit_chain_fails_the_run() -> None:
    observed = _complete()
    broken = ChainBreak(0, 5, f"{TOPIC}/0", 0, "e1", "the record was altered")
    observed.chain = ChainReport(records=1, heads={}, breaks=(broken,))
    [problem] = missing(observed)
    assert problem.startswith("the audit chain is broken:")
    assert "the record was altered" in problem


def test_an_unverified_audit_chain_fails_the_run() -> None:
    observed = _complete()
    observed.chain = None
    assert missing(observed) == ["the audit chain was not verified"]


def test_a_forgery_that_was_decided_fails_the_run() -> None:
    observed = _complete()
    observed.published.append(_published("f1", 1, forged=True))
    observed.audit.append(_record("f1", 1))
    observed.chain = _intact(2)
    assert "forged event f1 was decided, not quarantined" in missing(observed)


def test_a_forgery_in_quarantine_satisfies_the_story() -> None:
    observed = _complete()
    observed.published.append(_published("f1", 1, forged=True))
    observed.audit.append(_record("f1", 1, kind="quarantine"))
    observed.quarantined.append(QuarantinedInput(TOPIC, 1, "unverified", "key of met-police"))
    observed.chain = _intact(2)
    [check] = evaluate(observed, [quarantined_forgery()])
    assert check.ok
    assert check.detail == "unverified: key of met-police"
    assert missing(observed) == []


def test_a_failed_expectation_fails_the_run() -> None:
    observed = _complete()
    evaluate(observed, [receives("ilo-nl", "alert.outbound")])
    assert missing(observed) == [
        "ilo-nl receives alert.outbound: no alert.outbound in ilo-nl's outbox"
    ]


def test_receives_checks_the_format() -> None:
    observed = _complete()
    assert receives("cps", "case.charge", "cps-xml")(observed).ok
    assert not receives("cps", "case.charge", "case-json")(observed).ok


def test_receives_nothing_names_the_rule_that_withheld() -> None:
    observed = Observed(partners=PARTNERS)
    observed.published.append(_published("a1", 0, "alert.outbound"))
    observed.audit.append(_record("a1", 0, _outcome("ilo-xx", Outcome.WITHHOLD, "guard:dpa-s73")))
    check = receives_nothing_of("ilo-xx", "alert.outbound")(observed)
    assert check.ok
    assert check.detail == "withheld by guard:dpa-s73"


def test_receives_nothing_fails_when_the_partner_rendered_one() -> None:
    observed = Observed(partners=PARTNERS)
    observed.rendered.append(RenderedFile("ilo-xx", "a1", "alert.outbound", "alert-xml", None))
    assert not receives_nothing_of("ilo-xx", "alert.outbound")(observed).ok


def test_held_for_review_needs_a_hold_for_exactly_those_partners_and_no_delivery() -> None:
    observed = Observed(partners=PARTNERS)
    observed.published.append(_published("h1", 0, "alert.inbound", agency="ilo-nl"))
    observed.audit.append(_record("h1", 0, _outcome("cps", Outcome.HELD, "guard:hold-h3")))
    assert held_for_review("alert.inbound", "ilo-nl", ("cps",))(observed).ok
    assert not held_for_review("alert.inbound", "ilo-nl", ("cps", "ilo-xx"))(observed).ok
    observed.audit[0] = _record(
        "h1",
        0,
        _outcome("cps", Outcome.HELD, "guard:hold-h3"),
        _outcome("ilo-nl", Outcome.DELIVER, "r", "full"),
    )
    assert not held_for_review("alert.inbound", "ilo-nl", ("cps",))(observed).ok


REVIEWER = "duty-officer"
WHY = {"release": "the originator agreed", "refuse": "restriction applies"}


def _review_record(
    event_id: str, partner: str, verdict: str, outcome: Outcome, *, reviewer: str = REVIEWER
) -> AuditRecord:
    """The router's audit of a reviewer's decision on the hold of ``event_id`` (from ilo-nl)."""
    said = statement(verdict, reviewer, datetime(2026, 11, 28, tzinfo=UTC), "guard:hold-h3",
                     WHY[verdict])  # fmt: skip
    view = "full" if outcome is Outcome.DELIVER else None
    return _record(
        decision_id(hold_id_of("ilo-nl", event_id), partner),
        0,
        RecipientOutcome(PartnerId(partner), outcome, f"review:{verdict}", view, reason=said),
        topic="demo-20261128100000-abcd.decisions",
    )


def _reviewed() -> Observed:
    """An alert from ilo-nl held for cps and ilo-xx; released for cps, refused for ilo-xx."""
    observed = Observed(partners=PARTNERS)
    observed.published.append(_published("h1", 0, "alert.inbound", agency="ilo-nl"))
    observed.audit.append(
        _record(
            "h1",
            0,
            _outcome("cps", Outcome.HELD, "guard:hold-h3"),
            _outcome("ilo-xx", Outcome.HELD, "guard:hold-h3"),
        )
    )
    hold = hold_id_of("ilo-nl", "h1")
    for partner, verdict, outcome in (
        ("cps", "release", Outcome.DELIVER),
        ("ilo-xx", "refuse", Outcome.WITHHOLD),
    ):
        observed.reviews.append(
            ReviewSent(hold, "h1", partner, "guard:hold-h3", verdict, REVIEWER, WHY[verdict])
        )
        observed.audit.append(_review_record("h1", partner, verdict, outcome))
    observed.rendered.append(
        RenderedFile("cps", "h1", "alert.inbound", "alert-xml", None, ORIGINATOR_AND_ROUTER)
    )
    for status, partners, reviewer in (
        ("held", ("cps", "ilo-xx"), None),
        ("released", ("cps",), REVIEWER),
        ("refused", ("ilo-xx",), REVIEWER),
    ):
        observed.notices.append(NoticeSeen("ilo-nl", status, "h1", hold, partners, reviewer))
    observed.chain = _intact(3)
    return observed


def test_a_release_is_a_grant_of_the_held_event_and_a_review_is_not_a_decision() -> None:
    observed = _reviewed()
    assert observed.granted() == {("cps", "h1")}
    assert list(observed.decisions()) == ["h1"]
    assert missing(observed) == []


def test_a_release_the_subscriber_never_rendered_is_missing() -> None:
    observed = _reviewed()
    observed.rendered.clear()
    assert missing(observed) == ["cps's subscriber never rendered event h1, granted to it"]


def test_a_decision_sent_but_never_carried_out_is_missing() -> None:
    observed = _reviewed()
    del observed.audit[2]
    assert missing(observed) == [
        f"the router never carried out {REVIEWER}'s refuse of hold "
        f"{hold_id_of('ilo-nl', 'h1')} for ilo-xx"
    ]


def test_released_once_holds_for_one_rendering_naming_the_reviewer_and_reason() -> None:
    check = released_once("alert.inbound", "ilo-nl", "cps")(_reviewed())
    assert check.ok
    assert REVIEWER in check.detail
    assert WHY["release"] in check.detail


def test_released_once_fails_for_a_second_rendering() -> None:
    observed = _reviewed()
    observed.rendered.append(
        RenderedFile("cps", "h1", "alert.inbound", "alert-xml", None, ORIGINATOR_AND_ROUTER)
    )
    assert not released_once("alert.inbound", "ilo-nl", "cps")(observed).ok


def test_released_once_fails_when_the_router_did_not_deliver() -> None:
    observed = _reviewed()
    observed.audit[1] = _review_record("h1", "cps", "release", Outcome.WITHHOLD)
    observed.rendered.clear()
    assert not released_once("alert.inbound", "ilo-nl", "cps")(observed).ok


def test_released_once_fails_when_the_audit_names_another_reviewer() -> None:
    observed = _reviewed()
    observed.audit[1] = _review_record("h1", "cps", "release", Outcome.DELIVER, reviewer="x")
    assert not released_once("alert.inbound", "ilo-nl", "cps")(observed).ok


def test_released_once_fails_without_a_release() -> None:
    assert not released_once("alert.inbound", "ilo-nl", "ilo-xx")(_reviewed()).ok


def test_refused_never_delivered_holds_when_nothing_was_rendered() -> None:
    assert refused_never_delivered("alert.inbound", "ilo-nl", "ilo-xx")(_reviewed()).ok


def test_refused_never_delivered_fails_when_the_partner_rendered_it() -> None:
    observed = _reviewed()
    observed.rendered.append(
        RenderedFile("ilo-xx", "h1", "alert.inbound", "alert-xml", None, ORIGINATOR_AND_ROUTER)
    )
    assert not refused_never_delivered("alert.inbound", "ilo-nl", "ilo-xx")(observed).ok


def test_refused_never_delivered_fails_when_the_refusal_was_not_audited() -> None:
    observed = _reviewed()
    del observed.audit[2]
    assert not refused_never_delivered("alert.inbound", "ilo-nl", "ilo-xx")(observed).ok


def test_told_needs_every_status_notice_at_the_source() -> None:
    expect = told("ilo-nl", "alert.inbound", ("held", "released", "refused"))
    observed = _reviewed()
    assert expect(observed).ok
    observed.notices = [n for n in observed.notices if n.status != "refused"]
    check = expect(observed)
    assert not check.ok
    assert "no refused notice" in check.detail


def test_told_does_not_count_notices_to_another_agency() -> None:
    observed = _reviewed()
    observed.notices = [dataclasses.replace(n, recipient="cps") for n in observed.notices]
    assert not told("ilo-nl", "alert.inbound", ("held",))(observed).ok


def test_granted_view_needs_the_view_and_the_basis() -> None:
    observed = Observed(partners=PARTNERS)
    observed.published.append(_published("a1", 0, "alert.outbound"))
    observed.audit.append(
        _record("a1", 0, _outcome("ilo-nl", Outcome.DELIVER, "nl", "no-identity", "adequacy"))
    )
    assert not granted_view("ilo-nl", "alert.outbound", "full", "adequacy")(observed).ok
    observed.audit[0] = _record(
        "a1", 0, _outcome("ilo-nl", Outcome.DELIVER, "nl", "full", "adequacy")
    )
    assert granted_view("ilo-nl", "alert.outbound", "full", "adequacy")(observed).ok


def test_rejected_from_names_the_rows() -> None:
    observed = Observed(partners=PARTNERS)
    observed.rejected.append(
        RejectedInput("met-police", "bad.csv", 3, "invalid", "date_of_birth", "not a date")
    )
    check = rejected_from("met-police", "bad.csv")(observed)
    assert check.ok
    assert check.detail == "1 problem(s) in rows 3"
    assert not rejected_from("met-police", "good.csv")(observed).ok
