"""The real router, the publisher and a partner each logged in as the principal provisioning made.

Proves the ACLs ``msht provision`` grants are enough for the exchange to work (the router
restores from the audit topic, consumes ingress by pattern, commits transactions with its
transactional ids and group) and that a forgery written by an agency through its own,
legitimate access is quarantined, not delivered.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import SecretStr

from adapters.exchange.signed import EnvelopeOpener, EnvelopeSealer, router_key_from_settings
from adapters.intake.identity import derive_event_id
from adapters.protocol import CanonicalEvent
from adapters.registry import parser_for
from broker.audit import parse_record, verify_chain
from broker.crypto.encryption_keys import load_private_key
from broker.crypto.keyfiles import encryption_key_files, signing_key_file
from broker.crypto.keyring import generate_agency_keys
from broker.crypto.signing import signing_input
from broker.crypto.signing_keys import load_signing_key
from broker.crypto.trust import load_trust_store
from broker.events.envelope import Signature, build_envelope, encode_envelope
from broker.kafka import clients as kafka
from broker.policy import LoadedPolicy, load_checked_policy
from broker.provision.apply import ClusterAdmin, admin_config
from broker.provision.credentials import read_credential
from broker.provision.diff import topic_in_scope
from broker.provision.plan import Naming, build_plan
from broker.provision.run import provision
from broker.router.service import run_router
from broker.settings import Settings
from broker.types import AgencyId, EventId, PartnerId
from tests.unit.adapter_samples import sample

POLICY = """
version: "test"
partners:
  - id: {pa}
    kind: force
    jurisdiction: GB
    clearance: OFFICIAL_SENSITIVE
    subscriptions: {{event_types: [case.charging_decision]}}
    agreement: {{id: ISA-TEST-A, purposes: [investigation], expires: 2099-01-01}}
  - id: {pb}
    kind: prosecutor
    jurisdiction: GB
    clearance: OFFICIAL_SENSITIVE
    subscriptions: {{event_types: [case.charge]}}
    agreement: {{id: ISA-TEST-B, purposes: [investigation], expires: 2099-01-01}}
views:
  full: {{description: everything the event carries}}
rules:
  - id: charges-to-prosecutor
    match: {{event_types: [case.charge], max_classification: OFFICIAL_SENSITIVE}}
    deliver: {{to: [{pb}], view: full}}
"""


@dataclass
class Provisioned:
    """A provisioned deployment with keys, a policy and a login per principal."""

    admin: Settings
    naming: Naming
    credentials: Path
    policy: LoadedPolicy
    agency: str
    pa: str
    pb: str

    def login(self, user: str) -> Settings:
        password = SecretStr(read_credential(self.credentials, user))
        return self.admin.model_copy(update={"username": user, "password": password})

    def users(self) -> set[str]:
        plan = build_plan(self.naming, partners=[self.pa, self.pb], agencies=[self.agency])
        return {u.name for u in plan.users}


@pytest.fixture
def deployment(settings: Settings, tmp_path: Path) -> Iterator[Provisioned]:
    """Keys, trust store, policy and a provisioned, uuid-unique deployment (removed after)."""
    u = uuid.uuid4().hex[:10]
    pa, pb, agency = f"pa-{u}", f"pb-{u}", f"ag-{u}"
    naming = Naming(
        ingress_prefix=f"t{u}.in.",
        delivery_prefix=f"t{u}.out.",
        audit_topic=f"t{u}.audit",
        quarantine_topic=f"t{u}.quarantine",
        held_topic=f"t{u}.held",
        decisions_topic=f"t{u}.decisions",
        router_user=f"router-{u}",
        router_group=f"router-group-{u}",
        router_transactional_prefix=f"router-txn-{u}-",
        auditor_user=f"auditor-{u}",
        operator_user=f"operator-{u}",
        partitions=1,
    )
    admin = settings.model_copy(
        update={
            "state_dir": tmp_path,
            "trust_store": None,
            "key_dir": None,
            "ingress_prefix": naming.ingress_prefix,
            "delivery_prefix": naming.delivery_prefix,
            "audit_topic": naming.audit_topic,
            "quarantine_topic": naming.quarantine_topic,
            "held_topic": naming.held_topic,
            "decisions_topic": naming.decisions_topic,
            "router_group": naming.router_group,
            "router_transactional_prefix": naming.router_transactional_prefix,
        }
    )
    policy_path = tmp_path / "policy.yaml"
    policy_path.write_text(POLICY.format(pa=pa, pb=pb), encoding="utf-8")
    generate_agency_keys(admin.key_dir_path, admin.trust_store_path, "router", router=True)
    for party in (agency, pa, pb):
        generate_agency_keys(admin.key_dir_path, admin.trust_store_path, party)
    d = Provisioned(
        admin,
        naming,
        tmp_path / "credentials",
        load_checked_policy(policy_path, datetime.now(UTC)),
        agency,
        pa,
        pb,
    )
    plan = build_plan(naming, partners=[pa, pb], agencies=[agency])
    try:
        provision(admin, plan, credentials_dir=d.credentials)
        yield d
    finally:
        _remove(d)


def _remove(d: Provisioned) -> None:
    cluster = ClusterAdmin(d.admin)
    state = cluster.state()
    users = d.users()
    cluster.delete_acls(a for a in state.acls if a.principal.removeprefix("User:") in users)
    cluster.delete_users(u for u in users if u in state.scram_users)
    client = AdminClient(admin_config(d.admin))
    for future in client.delete_consumer_groups(
        [d.naming.router_group, d.pb], request_timeout=10
    ).values():
        try:
            future.result()
        except Exception:  # noqa: S112 - a group that never formed is fine
            continue
    topics = [n for n in state.topics if topic_in_scope(d.naming, n)]
    asyncio.run(kafka.delete_topics(d.admin, topics))


def _charge() -> CanonicalEvent:
    adapter = parser_for("case-json")
    doc = adapter.parse(sample("police/case-charge.json"), "case-json").accepted[0].document
    return adapter.to_canonical(doc)


def _forged(d: Provisioned, event: CanonicalEvent, event_id: EventId) -> bytes:
    """Signed with the agency's own key, but claiming the prosecutor as its source."""
    key = load_signing_key(signing_key_file(d.admin.key_dir_path, d.agency), d.agency)
    now = datetime.now(UTC)
    envelope = build_envelope(
        event_type=event.event_type,
        source=d.pb,
        subject=event.subject,
        markings=event.markings,
        payload=event.payload,
        occurred_at=now,
        published_at=now,
        event_id=event_id,
        payload_record=event.record_name,
    )
    at = envelope.header.published_at
    data = signing_input(envelope.header, envelope.payload, signer=d.agency, key_id=key.key_id,
                         signed_at=at)  # fmt: skip
    signature = Signature(AgencyId(d.agency), key.key_id, "ED25519", at, key.private_key.sign(data))
    return encode_envelope(dataclasses.replace(envelope, signatures=(signature,)))


async def _read(settings: Settings, topic: str, group: str | None, count: int) -> list[bytes]:
    values: list[bytes] = []
    async with kafka.consumer(settings, topic, group_id=group) as consumer:
        async with asyncio.timeout(60):
            while len(values) < count:
                batch = await consumer.getmany(timeout_ms=500)
                values.extend(r.value for recs in batch.values() for r in recs)
    return values


@pytest.fixture
async def routed(deployment: Provisioned) -> tuple[Provisioned, EventId, EventId]:
    """A charge and a forgery published as the agency, routed by the router as itself."""
    d = deployment
    as_agency = d.login(d.agency)
    router_key = router_key_from_settings(d.admin)
    key = load_signing_key(signing_key_file(d.admin.key_dir_path, d.agency), d.agency)
    sealer = EnvelopeSealer(key, router_key=router_key)
    charge = _charge()
    genuine = derive_event_id(sealer.agency, charge)
    forged_id = EventId(str(uuid.uuid4()))
    async with kafka.producer(as_agency) as producer:
        topic = as_agency.ingress_topic(AgencyId(d.agency))
        subject = charge.subject.encode()
        await producer.send_and_wait(topic, sealer.seal(charge, genuine), key=subject)
        await producer.send_and_wait(topic, _forged(d, charge, forged_id), key=subject)
    stop = asyncio.Event()
    as_router = d.login(d.naming.router_user)
    task = asyncio.create_task(run_router(as_router, d.policy, instance="acl-test", stop=stop))
    try:
        await _read(d.login(d.naming.auditor_user), d.naming.audit_topic, None, 2)
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
    return d, genuine, forged_id


async def test_router_as_its_provisioned_principal_delivers_to_the_granted_partner(
    routed: tuple[Provisioned, EventId, EventId],
) -> None:
    d, genuine, _ = routed
    [value] = await _read(d.login(d.pb), d.naming.delivery_topic(d.pb), d.pb, 1)
    keys = [
        load_private_key(p).private_key for p in encryption_key_files(d.admin.key_dir_path, d.pb)
    ]
    opener = EnvelopeOpener(
        load_trust_store(d.admin.trust_store_path), partner=PartnerId(d.pb), encryption_keys=keys
    )
    assert opener.open(value).event_id == genuine


async def test_forgery_written_through_the_agencys_own_access_is_quarantined(
    routed: tuple[Provisioned, EventId, EventId],
) -> None:
    d, _, forged_id = routed
    values = await _read(d.login(d.naming.auditor_user), d.naming.audit_topic, None, 2)
    kinds = {parse_record(v).event_id: parse_record(v).kind for v in values}
    assert kinds[forged_id] == "quarantine"
    quarantined = await _read(d.login(d.naming.operator_user), d.naming.quarantine_topic, None, 1)
    assert len(quarantined) == 1


async def test_auditor_verifies_the_chain_the_provisioned_router_wrote(
    routed: tuple[Provisioned, EventId, EventId],
) -> None:
    d, _, _ = routed
    values = await _read(d.login(d.naming.auditor_user), d.naming.audit_topic, None, 2)
    trust = load_trust_store(d.admin.trust_store_path)
    router_keys = {
        k.key_id: Ed25519PublicKey.from_public_bytes(k.public_key)
        for k in trust.signing_keys("router")
    }
    report = verify_chain(values, router_keys=router_keys)
    assert report.records == 2
    assert report.breaks == ()
