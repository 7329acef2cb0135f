"""Held events and reviewers' decisions without Kafka: the held record, authority, carrying out.

An H3 case charge is held for the CPS and the NCA; the duty officer (a reviewer in the demo
policy) releases or refuses it per partner. The decisions processor is the router's own
pipeline for the decisions topic; it is driven here with records as the broker delivers them.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from adapters.exchange.signed import EnvelopeOpener, EnvelopeSealer, RouterKey
from adapters.intake.identity import derive_event_id
from adapters.protocol import CanonicalEvent
from adapters.registry import parser_for
from adapters.rendering.subscriber import Subscriber
from broker.audit import AuditChain, AuditRecord, ChainHead, parse_record
from broker.cli import main
from broker.crypto.encryption_keys import load_private_key
from broker.crypto.keyfiles import encryption_key_files, signing_key_file
from broker.crypto.keyring import generate_agency_keys
from broker.crypto.signing_keys import SigningKey, load_signing_key
from broker.crypto.trust import load_trust_store
from broker.errors import ReviewError
from broker.events.envelope import decode_envelope
from broker.kafka.records import Incoming, Outgoing
from broker.policy import load_policy
from broker.policy.guards import HOLD_GUARDS
from broker.policy.model import HOLDING_GUARDS, LoadedPolicy, Reviewer
from broker.review import signed
from broker.review.closing import (
    NOT_CARRIED_OUT,
    closing_decisions,
    hold_states,
    read_statement,
    statement,
)
from broker.review.decision import DECISION_CONTEXT, DECISION_FORMAT, Verdict, write_decision
from broker.review.held import open_for_reviewer, read_closure, read_held
from broker.review.notice import Notice, Status, is_notice, open_notice
from broker.review.queue import build_queue
from broker.router.decisions import DecisionProcessor
from broker.router.processor import RouteProcessor, Topics
from broker.router.restore import DedupWindow
from broker.router.route import LOG_APPEND_TIME, RouteConfig, RouterIdentity
from broker.settings import Settings
from broker.types import AgencyId, PartnerId
from tests.unit.adapter_fakes import FakeConsumer
from tests.unit.adapter_samples import sample

REPO = Path(__file__).resolve().parents[2]
TOPICS = Topics(audit="audit", quarantine="quarantine", held="held")
REVIEWER = "duty-officer"


@dataclasses.dataclass
class World:
    config: RouteConfig
    police: EnvelopeSealer
    key_dir: Path

    def signing(self, agency: str) -> SigningKey:
        return load_signing_key(signing_key_file(self.key_dir, agency), agency)

    def reader_keys(self, agency: str) -> list[X25519PrivateKey]:
        return [load_private_key(p).private_key for p in encryption_key_files(self.key_dir, agency)]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("review")
    key_dir, trust_path = root / "keys", root / "trust.yaml"
    router = generate_agency_keys(key_dir, trust_path, "router", router=True)
    policy = load_policy(REPO / "deploy" / "policy.yaml")
    others = {"met-police", REVIEWER, "desk", *(p.id for p in policy.policy.partners)}
    for party in others:
        generate_agency_keys(key_dir, trust_path, party)
    assert router.encryption is not None
    assert router.signing is not None
    identity = RouterIdentity(AgencyId("router"), router.signing, (router.encryption.private_key,))
    # A second reviewer who may decide only 3x5x2 code C holds.
    desk = Reviewer(id="desk", guards=["guard:hold-3x5x2-C"])
    with_desk = policy.policy.model_copy(update={"reviewers": [*policy.policy.reviewers, desk]})
    config = RouteConfig(
        policy=LoadedPolicy(with_desk, policy.version, policy.source),
        trust=load_trust_store(trust_path),
        identity=identity,
        ingress_topic_of=lambda agency: f"ingress.{agency}",
        delivery_topic_of=lambda partner: f"deliver.{partner}",
        max_skew=timedelta(minutes=5),
    )
    police = EnvelopeSealer(
        load_signing_key(signing_key_file(key_dir, "met-police"), "met-police"),
        router_key=RouterKey(AgencyId("router"), router.encryption.public_key),
    )
    return World(config, police, key_dir)


def _charge(**markings: object) -> CanonicalEvent:
    adapter = parser_for("case-json")
    doc = adapter.parse(sample("police/case-charge.json"), "case-json").accepted[0].document
    event = adapter.to_canonical(doc)
    return dataclasses.replace(event, markings={**event.markings, **markings})


def _incoming(value: bytes, topic: str, offset: int = 0, key: bytes | None = None) -> Incoming:
    appended = int(datetime.now(UTC).timestamp() * 1000)
    if key is None:
        key = decode_envelope(value).header.subject.encode()
    return Incoming(topic, 0, offset, key, value, appended, LOG_APPEND_TIME, 1)


RESTRICTION = "Not to be used in court without the originator's consent"


def _hold(world: World, **markings: object) -> Outgoing:
    """Route an H3 charge; return its held record."""
    event = _charge(siena_handling="H3", siena_restrictions=RESTRICTION, **markings)
    value = world.police.seal(event, derive_event_id(world.police.agency, event))
    chain = AuditChain(ChainHead.genesis("ingress.met-police/0"), router="unit")
    out = RouteProcessor(world.config, TOPICS, chain, DedupWindow(100)).process(
        _incoming(value, "ingress.met-police")
    )
    [held] = [o for o in out if o.topic == "held"]
    return held


def _decisions(world: World, config: RouteConfig | None = None) -> DecisionProcessor:
    chain = AuditChain(ChainHead.genesis("decisions/0"), router="unit")
    return DecisionProcessor(config or world.config, TOPICS, chain, DedupWindow(100))


def _decision(
    world: World,
    held: Outgoing,
    partner: str,
    verdict: Verdict,
    *,
    reviewer: str = REVIEWER,
    key: SigningKey | None = None,
    reason: str = "checked with the originator",
) -> Incoming:
    value = write_decision(
        held_value=held.value,
        held=read_held(held.value),
        partner=partner,
        verdict=verdict,
        reason=reason,
        reviewer=key or world.signing(reviewer),
        decided_at=datetime.now(UTC),
    )
    return _incoming(value, "decisions", key=held.key)


@dataclasses.dataclass(frozen=True)
class Audited:
    kind: str
    reason: str
    outcomes: list[tuple[str, str, str, str]]


def _audit(out: Sequence[Outgoing]) -> Audited:
    [audit] = [o for o in out if o.topic == "audit"]
    record = parse_record(audit.value)
    return Audited(
        kind=record.kind,
        reason=dict(audit.headers).get("msht-reason", b"").decode(),
        outcomes=[(o.partner, o.outcome, o.rule, o.reason or "") for o in record.outcomes],
    )


def test_the_holding_guards_a_reviewer_may_be_given_are_the_policys_holding_guards() -> None:
    assert {name for name, _ in HOLD_GUARDS} == HOLDING_GUARDS


def test_a_held_event_is_kept_on_the_held_topic_for_every_partner_it_is_held_for(
    world: World,
) -> None:
    held = read_held(_hold(world).value)
    assert {(h.partner, h.guard) for h in held.holds} == {
        ("cps", "guard:hold-h3"),
        ("nca", "guard:hold-h3"),
    }


def _strings(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [t for v in node.values() for t in _strings(v)]
    if isinstance(node, list | tuple):
        return [t for v in node for t in _strings(v)]
    return []


def test_the_held_record_holds_no_restriction_text_or_event_content_in_clear(
    world: World,
) -> None:
    value = _hold(world).value.decode()
    event = _charge()
    content = {t for t in _strings(event.payload) if len(t) > 3 and t != event.subject}
    assert content, "the sample has text to look for"
    assert [t for t in [RESTRICTION, *content] if t in value] == []


def test_the_reviewer_opens_the_restriction_text_with_their_own_key(world: World) -> None:
    held = read_held(_hold(world).value)
    opened = open_for_reviewer(held, REVIEWER, world.reader_keys(REVIEWER))
    assert {h["reason"] for h in opened["holds"]} == {
        f"SIENA H3 restrictions need a human decision: {RESTRICTION}"
    }
    assert opened["header"]["event_id"] == held.event_id


def test_a_reviewer_not_allowed_to_decide_the_hold_cannot_open_it(world: World) -> None:
    held = read_held(_hold(world).value)
    with pytest.raises(Exception, match="not sealed to reviewer 'desk'"):
        open_for_reviewer(held, "desk", world.reader_keys("desk"))


def test_a_release_delivers_the_partners_view_and_audits_the_reviewer_and_reason(
    world: World,
) -> None:
    held = _hold(world)
    out = _decisions(world).process(_decision(world, held, "cps", Verdict.RELEASE))
    assert sorted(o.topic for o in out) == ["audit", "deliver.cps", "deliver.met-police", "held"]
    [view] = [o for o in out if o.topic == "deliver.cps"]
    envelope = decode_envelope(view.value)
    assert envelope.header.event_id == read_held(held.value).event_id
    assert envelope.header.provenance is not None
    [(partner, outcome, rule, reason)] = _audit(out).outcomes
    assert (partner, outcome, rule) == ("cps", "delivered", "review:release")
    assert REVIEWER in reason
    assert "checked with the originator" in reason


def test_a_refusal_delivers_nothing_and_closes_the_hold(world: World) -> None:
    out = _decisions(world).process(_decision(world, _hold(world), "nca", Verdict.REFUSE))
    assert sorted(o.topic for o in out) == ["audit", "deliver.met-police", "held"]
    [closed] = [o for o in out if o.topic == "held"]
    closure = read_closure(closed.value)
    assert (closure.partner, closure.verdict, closure.outcome) == ("nca", "refuse", "withheld")
    [(_, outcome, rule, _)] = _audit(out).outcomes
    assert (outcome, rule) == ("withheld", "review:refuse")


def test_a_second_decision_on_the_same_hold_and_partner_is_refused_with_the_reason(
    world: World,
) -> None:
    held, processor = _hold(world), _decisions(world)
    processor.process(_decision(world, held, "cps", Verdict.REFUSE))
    out = processor.process(_decision(world, held, "cps", Verdict.RELEASE))
    assert sorted(o.topic for o in out) == ["audit", "quarantine"]
    assert _audit(out).reason == "already-decided"


def test_decisions_for_two_partners_of_one_hold_are_each_carried_out(world: World) -> None:
    held, processor = _hold(world), _decisions(world)
    first = processor.process(_decision(world, held, "cps", Verdict.RELEASE))
    second = processor.process(_decision(world, held, "nca", Verdict.REFUSE))
    assert "deliver.cps" in {o.topic for o in first}
    assert "quarantine" not in {o.topic for o in second}


def _views(out: Sequence[Outgoing]) -> list[Outgoing]:
    """The events delivered (not the status notices to the source)."""
    return [o for o in out if o.topic.startswith("deliver.") and not is_notice(o.value)]


def _notices(world: World, out: Sequence[Outgoing]) -> list[tuple[str, Notice]]:
    trust = world.config.trust
    return [(o.topic, open_notice(o.value, trust)) for o in out if is_notice(o.value)]


def _quarantined(out: Sequence[Outgoing]) -> str:
    assert _views(out) == []
    [q] = [o for o in out if o.topic == "quarantine"]
    return dict(q.headers)["msht-reason"].decode()


def test_a_decision_signed_by_a_key_not_the_reviewers_is_quarantined(world: World) -> None:
    forged = SigningKey(AgencyId(REVIEWER), Ed25519PrivateKey.generate())
    decision = _decision(world, _hold(world), "cps", Verdict.RELEASE, key=forged)
    assert _quarantined(_decisions(world).process(decision)) == "unverified-decision"


def test_a_decision_by_an_agency_that_is_not_a_reviewer_is_quarantined(world: World) -> None:
    decision = _decision(world, _hold(world), "cps", Verdict.RELEASE, reviewer="met-police")
    assert _quarantined(_decisions(world).process(decision)) == "reviewer-not-allowed"


def test_a_decision_by_a_reviewer_not_allowed_for_the_guard_is_quarantined(world: World) -> None:
    decision = _decision(world, _hold(world), "cps", Verdict.RELEASE, reviewer="desk")
    assert _quarantined(_decisions(world).process(decision)) == "reviewer-not-allowed"


def test_a_decision_for_a_hold_the_router_did_not_write_is_quarantined(world: World) -> None:
    held = _hold(world)
    document = json.loads(held.value)
    # Signed by another key than the router's: a hold this router never wrote.
    other = Ed25519PrivateKey.generate()
    body = base64.urlsafe_b64decode(document["body"] + "==")
    forged_sig = signed.b64(other.sign(b"msht-broker/held/v1\x00" + body))
    forged = dataclasses.replace(
        held, value=json.dumps({**document, "signature": forged_sig}).encode()
    )
    decision = _decision(world, forged, "cps", Verdict.RELEASE)
    assert _quarantined(_decisions(world).process(decision)) == "unknown-hold"


def test_a_decision_for_a_partner_the_event_is_not_held_for_is_quarantined(world: World) -> None:
    held = _hold(world)
    good = _decision(world, held, "cps", Verdict.RELEASE)
    document = json.loads(good.value)
    # Re-sign a body naming another partner: authentic, but no such hold.
    body = json.loads(base64.urlsafe_b64decode(document["body"] + "=="))
    key = world.signing(REVIEWER)
    value = signed.write(
        DECISION_FORMAT,
        DECISION_CONTEXT,
        {**body, "partner": "ilo-nl"},
        REVIEWER,
        key.key_id,
        key.private_key,
    )
    out = _decisions(world).process(dataclasses.replace(good, value=value))
    assert _quarantined(out) == "unknown-hold"


@pytest.mark.parametrize("value", [b"", b"{}", b"not json", b'{"format":"msht-decision/v1"}'])
def test_a_malformed_decision_is_quarantined_and_audited(world: World, value: bytes) -> None:
    out = _decisions(world).process(_incoming(value, "decisions", key=b"k"))
    assert _quarantined(out) == "malformed-decision"
    assert _audit(out).kind == "quarantine"


def test_a_release_cannot_override_another_hold(world: World) -> None:
    grading = {"source": "SOURCE_1", "intelligence": "A", "handling": "C"}
    held = _hold(world, grading=grading)
    out = _decisions(world).process(_decision(world, held, "cps", Verdict.RELEASE))
    assert _views(out) == []
    [(_, outcome, _, reason)] = _audit(out).outcomes
    assert outcome == "withheld"
    assert "still held by guard:hold-3x5x2-C" in reason


def test_a_release_cannot_override_default_deny(world: World) -> None:
    held = _hold(world)
    policy = world.config.policy
    no_rules = LoadedPolicy(policy.policy.model_copy(update={"rules": []}), "v2", policy.source)
    config = dataclasses.replace(world.config, policy=no_rules)
    out = _decisions(world, config).process(_decision(world, held, "cps", Verdict.RELEASE))
    assert _views(out) == []
    [(_, outcome, _, reason)] = _audit(out).outcomes
    assert outcome == "withheld"
    assert "cannot override default-deny" in reason


def test_the_queue_shows_a_hold_waiting_for_every_partner_until_each_is_decided(
    world: World,
) -> None:
    held = _hold(world)
    out = _decisions(world).process(_decision(world, held, "cps", Verdict.REFUSE))
    [closure] = [o for o in out if o.topic == "held"]
    before = build_queue([held.value]).find(read_held(held.value).hold_id)
    after = build_queue([held.value, closure.value]).find(read_held(held.value).hold_id)
    assert set(before.waiting) == {"cps", "nca"}
    assert after.waiting == ("nca",)


def test_a_hold_decided_for_every_partner_leaves_the_open_queue(world: World) -> None:
    held, processor = _hold(world), _decisions(world)
    closures = [
        o.value
        for partner in ("cps", "nca")
        for o in processor.process(_decision(world, held, partner, Verdict.REFUSE))
        if o.topic == "held"
    ]
    assert build_queue([held.value, *closures]).open() == ()


def test_the_queue_lists_holds_oldest_first(world: World) -> None:
    first, second = _hold(world), _hold(world, classification="OFFICIAL")
    queue = build_queue([second.value, first.value])
    times = [w.record.held_at for w in queue.holds]
    assert times == sorted(times)


def test_a_hold_older_than_the_warning_age_is_overdue(world: World) -> None:
    queue = build_queue([_hold(world).value])
    later = datetime.now(UTC) + timedelta(hours=73)
    assert len(queue.overdue(later, timedelta(hours=72))) == 1
    assert queue.overdue(datetime.now(UTC), timedelta(hours=72)) == ()


def test_a_record_that_is_neither_hold_nor_closure_is_counted_not_fatal() -> None:
    assert build_queue([b"garbage"]).unreadable == 1


def test_the_source_is_told_on_its_delivery_topic_when_its_event_is_held(world: World) -> None:
    event = _charge(siena_handling="H3", siena_restrictions=RESTRICTION)
    value = world.police.seal(event, derive_event_id(world.police.agency, event))
    chain = AuditChain(ChainHead.genesis("ingress.met-police/0"), router="unit")
    out = RouteProcessor(world.config, TOPICS, chain, DedupWindow(100)).process(
        _incoming(value, "ingress.met-police")
    )
    [(topic, notice)] = _notices(world, out)
    assert topic == "deliver.met-police"
    assert (notice.status, set(notice.partners)) == (Status.HELD, {"cps", "nca"})


@pytest.mark.parametrize(
    ("verdict", "status"), [(Verdict.RELEASE, Status.RELEASED), (Verdict.REFUSE, Status.REFUSED)]
)
def test_the_source_is_told_of_each_decision_with_the_reviewers_reason(
    world: World, verdict: Verdict, status: Status
) -> None:
    out = _decisions(world).process(_decision(world, _hold(world), "cps", verdict))
    [(topic, notice)] = _notices(world, out)
    assert topic == "deliver.met-police"
    assert (notice.status, notice.partners, notice.reviewer) == (status, ("cps",), REVIEWER)
    assert "checked with the originator" in notice.reason


def test_a_release_the_policy_still_withholds_is_told_as_not_released(world: World) -> None:
    grading = {"source": "SOURCE_1", "intelligence": "A", "handling": "C"}
    out = _decisions(world).process(
        _decision(world, _hold(world, grading=grading), "cps", Verdict.RELEASE)
    )
    [(_, notice)] = _notices(world, out)
    assert notice.status is Status.NOT_RELEASED


def test_a_notice_not_signed_by_a_router_is_refused(world: World) -> None:
    out = _decisions(world).process(_decision(world, _hold(world), "cps", Verdict.REFUSE))
    [value] = [o.value for o in out if is_notice(o.value)]
    document = json.loads(value)
    body = base64.urlsafe_b64decode(document["body"] + "==")
    police = world.signing("met-police")
    forged = {
        **document,
        "signer": "met-police",
        "key_id": police.key_id,
        "signature": signed.b64(
            police.private_key.sign(b"msht-broker/review-notice/v1\x00" + body)
        ),
    }
    with pytest.raises(ReviewError, match="not a router"):
        open_notice(json.dumps(forged).encode(), world.config.trust)


def _subscriber(world: World, tmp_path: Path, partner: str, fmt: str | None) -> Subscriber:
    opener = EnvelopeOpener(
        world.config.trust, partner=PartnerId(partner), encryption_keys=world.reader_keys(partner)
    )
    settings = Settings(state_dir=tmp_path, delivery_prefix="deliver.")
    consumer = FakeConsumer("deliver.met-police", [])
    return Subscriber(settings, PartnerId(partner), opener, consumer, fmt=fmt, outbox=tmp_path)


def test_the_sources_subscriber_renders_a_notice_as_json_beside_its_outbox(
    world: World, tmp_path: Path
) -> None:
    out = _decisions(world).process(_decision(world, _hold(world), "cps", Verdict.REFUSE))
    [notice] = [o for o in out if is_notice(o.value)]
    sub = _subscriber(world, tmp_path, "met-police", "case-json")
    sub.handle(notice.value, notice.topic, 0, 0)
    [(opened, path)] = sub.report.notices
    assert opened.partners == ("cps",)
    assert path is not None
    assert json.loads(path.read_bytes())["review_notice"]["status"] == "refused"
    assert (sub.report.rendered, sub.report.failed) == ([], [])


def test_a_subscriber_writing_xml_renders_the_notice_as_xml(world: World, tmp_path: Path) -> None:
    out = _decisions(world).process(_decision(world, _hold(world), "cps", Verdict.RELEASE))
    [notice] = [o for o in out if is_notice(o.value)]
    sub = _subscriber(world, tmp_path, "met-police", "alert-xml")
    sub.handle(notice.value, notice.topic, 0, 0)
    [(_, path)] = sub.report.notices
    assert path is not None
    assert b"<Status>released</Status>" in path.read_bytes()


def test_a_forged_notice_is_reported_not_rendered(world: World, tmp_path: Path) -> None:
    out = _decisions(world).process(_decision(world, _hold(world), "cps", Verdict.REFUSE))
    [notice] = [o.value for o in out if is_notice(o.value)]
    document = json.loads(notice)
    document["signature"] = signed.b64(Ed25519PrivateKey.generate().sign(b"x"))
    sub = _subscriber(world, tmp_path, "met-police", None)
    sub.handle(json.dumps(document, separators=(",", ":")).encode(), "deliver.met-police", 0, 0)
    assert sub.report.notices == []
    assert len(sub.report.failed) == 1


def test_the_audit_trail_joins_a_held_event_to_the_decisions_that_closed_it(
    world: World,
) -> None:
    event = _charge(siena_handling="H3", siena_restrictions=RESTRICTION)
    value = world.police.seal(event, derive_event_id(world.police.agency, event))
    chain = AuditChain(ChainHead.genesis("ingress.met-police/0"), router="unit")
    routed = RouteProcessor(world.config, TOPICS, chain, DedupWindow(100)).process(
        _incoming(value, "ingress.met-police")
    )
    [held_audit] = [parse_record(o.value) for o in routed if o.topic == "audit"]
    [held] = [o for o in routed if o.topic == "held"]
    decided = _decisions(world).process(_decision(world, held, "nca", Verdict.REFUSE))
    trail = [held_audit, *(parse_record(o.value) for o in decided if o.topic == "audit")]
    closed = closing_decisions(held_audit, trail)
    assert [(o.partner, o.rule) for _, o in closed] == [("nca", "review:refuse")]


def _held_audit(world: World) -> tuple[AuditRecord, Outgoing]:
    """Route an H3 charge (held for the CPS and the NCA): its audit record and held record."""
    event = _charge(siena_handling="H3", siena_restrictions=RESTRICTION)
    value = world.police.seal(event, derive_event_id(world.police.agency, event))
    chain = AuditChain(ChainHead.genesis("ingress.met-police/0"), router="unit")
    routed = RouteProcessor(world.config, TOPICS, chain, DedupWindow(100)).process(
        _incoming(value, "ingress.met-police")
    )
    [held_audit] = [parse_record(o.value) for o in routed if o.topic == "audit"]
    [held] = [o for o in routed if o.topic == "held"]
    return held_audit, held


def _audited(out: Sequence[Outgoing]) -> list[AuditRecord]:
    return [parse_record(o.value) for o in out if o.topic == "audit"]


def test_hold_states_name_the_reviewer_decision_reason_and_time_that_closed_each_hold(
    world: World,
) -> None:
    held_audit, held = _held_audit(world)
    decisions = _decisions(world)
    released = decisions.process(
        _decision(world, held, "nca", Verdict.RELEASE, reason="Europol agreed (ref 12)")
    )
    refused = decisions.process(
        _decision(world, held, "cps", Verdict.REFUSE, reason="prosecutors: no consent")
    )
    trail = [held_audit, *_audited(released), *_audited(refused)]
    states = {s.partner: s for s in hold_states(held_audit, trail, datetime.now(UTC))}
    seen = {p: (s.decision, s.outcome, s.reviewer, s.reason, s.open) for p, s in states.items()}
    assert seen == {
        "nca": ("release", "delivered", REVIEWER, "Europol agreed (ref 12)", False),
        "cps": ("refuse", "withheld", REVIEWER, "prosecutors: no consent", False),
    }
    [release_record] = _audited(released)
    assert states["nca"].audited_at == release_record.time
    assert states["nca"].decided_at is not None
    assert datetime.fromisoformat(states["nca"].decided_at) <= release_record.time
    assert states["nca"].as_dict()["reviewer"] == REVIEWER


def test_a_hold_no_decision_closed_is_open_with_how_long_it_has_waited(world: World) -> None:
    held_audit, held = _held_audit(world)
    refused = _decisions(world).process(_decision(world, held, "cps", Verdict.REFUSE))
    later = held_audit.time + timedelta(hours=30)
    states = {
        s.partner: s for s in hold_states(held_audit, [held_audit, *_audited(refused)], later)
    }
    assert states["nca"].open
    assert states["nca"].age == timedelta(hours=30)
    assert states["nca"].as_dict() == {
        "partner": "nca",
        "guard": "guard:hold-h3",
        "state": "open",
        "held_at": held_audit.time.isoformat(),
        "age_hours": 30.0,
    }
    assert "OPEN, waiting 30.0h" in states["nca"].describe()
    assert not states["cps"].open


def test_a_repeated_decision_does_not_replace_the_one_that_closed_the_hold(world: World) -> None:
    held_audit, held = _held_audit(world)
    decisions = _decisions(world)
    first = decisions.process(_decision(world, held, "nca", Verdict.RELEASE))
    again = decisions.process(_decision(world, held, "nca", Verdict.REFUSE))
    trail = [held_audit, *_audited(first), *_audited(again)]
    [nca] = [s for s in hold_states(held_audit, trail, datetime.now(UTC)) if s.partner == "nca"]
    assert (nca.decision, nca.outcome) == ("release", "delivered")


def test_a_release_not_carried_out_keeps_the_reviewers_reason_apart_from_the_routers(
    world: World,
) -> None:
    held_audit, held = _held_audit(world)
    # Without the NCA in the registry the router cannot carry the release out.
    policy = world.config.policy.policy.model_copy(
        update={"partners": [p for p in world.config.policy.policy.partners if p.id != "nca"]}
    )
    config = dataclasses.replace(
        world.config, policy=dataclasses.replace(world.config.policy, policy=policy)
    )
    out = _decisions(world, config).process(
        _decision(world, held, "nca", Verdict.RELEASE, reason="fine by me")
    )
    [nca] = [
        s
        for s in hold_states(held_audit, [held_audit, *_audited(out)], datetime.now(UTC))
        if s.partner == "nca"
    ]
    assert (nca.decision, nca.outcome, nca.reason) == ("release", "withheld", "fine by me")
    assert nca.not_carried_out is not None
    assert "no longer in the registry" in nca.not_carried_out


@pytest.mark.parametrize(
    "reason",
    [
        "plain",
        "with (parentheses): and a colon",
        "two\nlines",
        "by reviewer someone at 2020-01-01 (guard:x): nested",
        f"quoting the router{NOT_CARRIED_OUT}in the reviewer's own words",
    ],
)
@pytest.mark.parametrize("verdict", list(Verdict))
def test_a_decision_statement_reads_back_as_written(verdict: Verdict, reason: str) -> None:
    at = datetime(2026, 11, 30, 21, 0, tzinfo=UTC)
    said = read_statement(statement(verdict.value, REVIEWER, at, "guard:hold-h3", reason))
    assert said is not None
    assert (said.verdict, said.reviewer, said.decided_at, said.guard, said.reason) == (
        verdict.value,
        REVIEWER,
        at.isoformat(),
        "guard:hold-h3",
        reason,
    )


def test_text_that_is_not_a_decision_statement_reads_as_none() -> None:
    assert read_statement("no rule grants this event to this partner") is None
    assert read_statement(None) is None


def test_audit_query_held_shows_the_decision_that_closed_each_hold_and_the_open_ones(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    held_audit, held = _held_audit(world)
    released = _decisions(world).process(
        _decision(world, held, "nca", Verdict.RELEASE, reason="Europol agreed")
    )
    trail = tmp_path / "audit.jsonl"
    trail.write_bytes(b"".join(r.to_bytes() + b"\n" for r in [held_audit, *_audited(released)]))
    query = ["audit", "query", "--from-file", str(trail), "--outcome", "held"]
    capsys.readouterr()  # the router's log lines, before the command's output

    assert main([*query, "--json"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    document = json.loads(line)
    assert document["event_id"] == held_audit.event_id
    review = {r["partner"]: r for r in document["review"]}
    assert (review["nca"]["decision"], review["nca"]["reviewer"], review["nca"]["reason"]) == (
        "release",
        REVIEWER,
        "Europol agreed",
    )
    assert review["cps"]["state"] == "open"

    assert main(query) == 0
    table = capsys.readouterr().out
    assert f"nca: released by {REVIEWER}" in table
    assert "cps: OPEN, waiting" in table
