"""Partner isolation on the real broker: each client logs in as a principal provisioning made.

Every test provisions its own deployment (uuid-unique prefixes, topics, principals, groups and
transactional ids) with ``broker.provision``, logs in as the users it created with the
passwords it stored, and removes its topics, users, groups and ACLs afterwards.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from confluent_kafka.admin import AdminClient
from pydantic import SecretStr
from rich.console import Console

from broker.cli import build_parser
from broker.cli import provision as provision_cli
from broker.errors import AuthenticationError, AuthorizationError, TransportError
from broker.kafka import clients as kafka
from broker.provision.apply import ClusterAdmin, admin_config
from broker.provision.credentials import read_credential
from broker.provision.diff import ClusterState, topic_in_scope
from broker.provision.plan import Naming, ProvisionPlan, build_plan
from broker.provision.run import ProvisionResult, provision
from broker.settings import Settings, load_settings

REFUSED = (AuthorizationError, AuthenticationError)
"""A removed user may be refused at login (credential pruned) or by the ACLs."""


@dataclass
class Deployment:
    """One provisioned, uuid-unique deployment and how to log in as its principals."""

    admin: Settings
    naming: Naming
    credentials: Path
    partners: list[str]
    agency: str

    @property
    def pa(self) -> str:
        return self.partners[0]

    @property
    def pb(self) -> str:
        return self.partners[1]

    def plan(self, partners: list[str] | None = None) -> ProvisionPlan:
        ids = self.partners if partners is None else partners
        return build_plan(self.naming, partners=ids, agencies=[*ids, self.agency])

    def apply(self, partners: list[str] | None = None, *, prune: bool = False) -> ProvisionResult:
        return provision(
            self.admin, self.plan(partners), credentials_dir=self.credentials, prune=prune
        )

    def login(self, user: str) -> Settings:
        password = SecretStr(read_credential(self.credentials, user))
        return self.admin.model_copy(
            update={"username": user, "password": password, "client_id": f"test-{user}"}
        )

    def scoped_state(self) -> ClusterState:
        """The part of the cluster this deployment owns (others share the broker)."""
        state = ClusterAdmin(self.admin).state()
        users = {u.name for u in self.plan().users}
        principals = {f"User:{u}" for u in users}
        return ClusterState(
            topics={n: p for n, p in state.topics.items() if topic_in_scope(self.naming, n)},
            scram_users=frozenset(u for u in state.scram_users if u in users),
            acls=frozenset(a for a in state.acls if a.principal in principals),
        )


def _cleanup(deployment: Deployment) -> None:
    naming = deployment.naming
    users = {u.name for u in deployment.plan().users}
    cluster = ClusterAdmin(deployment.admin)
    state = cluster.state()
    cluster.delete_acls(a for a in state.acls if a.principal.removeprefix("User:") in users)
    cluster.delete_users(u for u in users if u in state.scram_users)
    topics = [n for n in state.topics if topic_in_scope(naming, n)]
    groups = [*deployment.partners, naming.router_group, naming.auditor_user]
    client = AdminClient(admin_config(deployment.admin))
    for future in client.delete_consumer_groups(groups, request_timeout=10).values():
        try:
            future.result()
        except Exception:  # noqa: S112 - groups that never existed are fine
            continue
    asyncio.run(kafka.delete_topics(deployment.admin, topics))


@pytest.fixture
def deployment(settings: Settings, tmp_path: Path) -> Iterator[Deployment]:
    """A freshly provisioned deployment with partners pa and pb and an agency-only publisher."""
    u = uuid.uuid4().hex[:10]
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
    d = Deployment(
        admin=settings,
        naming=naming,
        credentials=tmp_path / "credentials",
        partners=[f"pa-{u}", f"pb-{u}"],
        agency=f"ag-{u}",
    )
    try:
        d.apply()
        yield d
    finally:
        _cleanup(d)


async def produce(settings: Settings, topic: str, value: bytes = b"event") -> None:
    async with kafka.producer(settings) as producer:
        await producer.send_and_wait(topic, value, key=b"subject")


async def consume_one(settings: Settings, topic: str, group: str) -> bytes:
    async with kafka.consumer(settings, topic, group_id=group) as consumer:
        record = await asyncio.wait_for(consumer.getone(), 20)
    value: bytes = record.value
    return value


async def start_transactional(settings: Settings, transactional_id: str) -> None:
    async with kafka.transactional_producer(settings, transactional_id):
        pass


async def refused(attempt: Awaitable[Any]) -> TransportError:
    with pytest.raises(REFUSED) as caught:
        await asyncio.wait_for(attempt, 30)
    return caught.value


async def credential_gone(settings: Settings, seconds: float = 20.0) -> None:
    """Wait until the broker refuses ``settings``' login.

    Kafka applies a deleted SCRAM credential asynchronously, so a client that connects in
    the moment after ``provision --prune`` returns may still log in and then lose its
    connection mid-request (a broker-unavailable error, not a refused login).
    """
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            await kafka.wait_for_broker(settings, timeout=5.0)
        except AuthenticationError:
            return
        except TransportError:
            pass
        if asyncio.get_running_loop().time() >= deadline:
            user = settings.username
            raise AssertionError(f"user {user!r} still logs in {seconds} s after prune")
        await asyncio.sleep(0.5)


# --- what partners may do ------------------------------------------------------------


async def test_partner_reads_what_the_router_delivered_to_it(deployment: Deployment) -> None:
    d = deployment
    await produce(d.login(d.naming.router_user), d.naming.delivery_topic(d.pa), b"for pa")
    assert await consume_one(d.login(d.pa), d.naming.delivery_topic(d.pa), d.pa) == b"for pa"


async def test_partner_cannot_read_another_partners_delivery_topic(
    deployment: Deployment,
) -> None:
    d = deployment
    await produce(d.login(d.naming.router_user), d.naming.delivery_topic(d.pb), b"for pb")
    error = await refused(consume_one(d.login(d.pa), d.naming.delivery_topic(d.pb), d.pa))
    assert isinstance(error, AuthorizationError)


async def test_partner_cannot_read_any_ingress_topic(deployment: Deployment) -> None:
    d = deployment
    for agency in (d.pa, d.pb, d.agency):
        await refused(consume_one(d.login(d.pa), d.naming.ingress_topic(agency), d.pa))


async def test_partner_that_publishes_writes_its_own_ingress_topic(
    deployment: Deployment,
) -> None:
    d = deployment
    await produce(d.login(d.pa), d.naming.ingress_topic(d.pa))
    router = d.login(d.naming.router_user)
    assert await consume_one(router, d.naming.ingress_topic(d.pa), d.naming.router_group)


async def test_partner_cannot_write_another_agencys_ingress_topic(deployment: Deployment) -> None:
    d = deployment
    for agency in (d.pb, d.agency):
        await refused(produce(d.login(d.pa), d.naming.ingress_topic(agency)))


async def test_partner_cannot_write_its_own_or_another_delivery_topic(
    deployment: Deployment,
) -> None:
    d = deployment
    for partner in (d.pa, d.pb):
        await refused(produce(d.login(d.pa), d.naming.delivery_topic(partner)))


async def test_partner_cannot_use_the_routers_consumer_group(deployment: Deployment) -> None:
    d = deployment
    await produce(d.login(d.naming.router_user), d.naming.delivery_topic(d.pa))
    await refused(consume_one(d.login(d.pa), d.naming.delivery_topic(d.pa), d.naming.router_group))


async def test_partner_cannot_use_the_routers_transactional_ids(deployment: Deployment) -> None:
    d = deployment
    txn_id = f"{d.naming.router_transactional_prefix}{d.naming.ingress_topic(d.pa)}.0"
    await start_transactional(d.login(d.naming.router_user), txn_id)  # the router may
    await refused(start_transactional(d.login(d.pa), txn_id))


async def test_router_moves_an_event_from_ingress_to_delivery_in_one_transaction(
    deployment: Deployment,
) -> None:
    d = deployment
    naming = d.naming
    await produce(d.login(d.agency), naming.ingress_topic(d.agency), b"signed event")
    router = d.login(naming.router_user)
    txn_id = f"{naming.router_transactional_prefix}{naming.ingress_topic(d.agency)}.0"
    async with (
        kafka.consumer(router, naming.ingress_topic(d.agency), group_id=naming.router_group) as c,
        kafka.transactional_producer(router, txn_id) as producer,
    ):
        record = await asyncio.wait_for(c.getone(), 20)
        async with producer.transaction():
            await producer.send(naming.delivery_topic(d.pa), record.value, key=b"subject")
            await producer.send(naming.audit_topic, b"{}", key=b"subject")
            await producer.send_offsets_to_transaction(
                {TopicPartition(record.topic, record.partition): record.offset + 1},
                naming.router_group,
            )
    delivered = await consume_one(d.login(d.pa), naming.delivery_topic(d.pa), d.pa)
    assert delivered == b"signed event"


async def test_partner_cannot_read_quarantine_but_the_operator_can(
    deployment: Deployment,
) -> None:
    d = deployment
    await produce(d.login(d.naming.router_user), d.naming.quarantine_topic, b"raw")
    await refused(consume_one(d.login(d.pa), d.naming.quarantine_topic, d.pa))
    operator = d.login(d.naming.operator_user)
    assert await consume_one(operator, d.naming.quarantine_topic, d.naming.operator_group)


async def test_auditor_reads_audit_and_a_partner_cannot(deployment: Deployment) -> None:
    d = deployment
    await produce(d.login(d.naming.router_user), d.naming.audit_topic, b"{}")
    auditor = d.login(d.naming.auditor_user)
    assert await consume_one(auditor, d.naming.audit_topic, d.naming.auditor_group) == b"{}"
    await refused(consume_one(d.login(d.pa), d.naming.audit_topic, d.pa))


async def test_agency_cannot_read_its_own_ingress_topic(deployment: Deployment) -> None:
    d = deployment
    await produce(d.login(d.agency), d.naming.ingress_topic(d.agency))
    await refused(consume_one(d.login(d.agency), d.naming.ingress_topic(d.agency), d.agency))


# --- re-provisioning -----------------------------------------------------------------


async def test_removed_partner_can_no_longer_read(deployment: Deployment) -> None:
    d = deployment
    router = d.login(d.naming.router_user)
    await produce(router, d.naming.delivery_topic(d.pb), b"before")
    pb = d.login(d.pb)
    assert await consume_one(pb, d.naming.delivery_topic(d.pb), d.pb) == b"before"
    d.apply(partners=[d.pa])
    await produce(router, d.naming.delivery_topic(d.pb), b"after")
    await refused(consume_one(pb, d.naming.delivery_topic(d.pb), d.pb))


async def test_pruned_partner_cannot_even_log_in(deployment: Deployment) -> None:
    d = deployment
    pb = d.login(d.pb)
    d.apply(partners=[d.pa], prune=True)
    await credential_gone(pb)
    error = await refused(consume_one(pb, d.naming.delivery_topic(d.pb), d.pb))
    assert isinstance(error, AuthenticationError)


def test_second_run_changes_nothing(deployment: Deployment) -> None:
    before = deployment.scoped_state()
    result = deployment.apply()
    assert not result.diff.changes_anything
    assert deployment.scoped_state() == before


def test_dry_run_changes_nothing(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    d = deployment
    naming = d.naming
    policy = tmp_path / "policy.yaml"
    newcomer = f"pc-{uuid.uuid4().hex[:6]}"
    partners = "".join(
        f"  - id: {p}\n    kind: force\n    jurisdiction: GB\n    clearance: OFFICIAL\n"
        "    subscriptions: {event_types: [referral.nrm]}\n"
        for p in (*d.partners, newcomer)
    )
    policy.write_text(f'version: "1"\npartners:\n{partners}', encoding="utf-8")
    env = {
        "MSHT_INGRESS_PREFIX": naming.ingress_prefix,
        "MSHT_DELIVERY_PREFIX": naming.delivery_prefix,
        "MSHT_AUDIT_TOPIC": naming.audit_topic,
        "MSHT_QUARANTINE_TOPIC": naming.quarantine_topic,
        "MSHT_HELD_TOPIC": naming.held_topic,
        "MSHT_DECISIONS_TOPIC": naming.decisions_topic,
        "MSHT_ROUTER_AGENCY": naming.router_user,
        "MSHT_ROUTER_GROUP": naming.router_group,
        "MSHT_ROUTER_TRANSACTIONAL_PREFIX": naming.router_transactional_prefix,
        "MSHT_STATE_DIR": str(tmp_path / "state"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    before = d.scoped_state()
    # The CLI's own run(), not broker.cli.main: main() configures logging for the process.
    args = build_parser().parse_args(
        [
            "provision",
            str(policy),
            "--dry-run",
            "--partitions=1",
            f"--agency={d.agency}",
            f"--auditor={naming.auditor_user}",
            f"--operator={naming.operator_user}",
        ]
    )
    out = io.StringIO()
    assert provision_cli.run(args, load_settings(), Console(file=out, width=200)) == 0
    assert "dry run" in out.getvalue()
    assert newcomer in out.getvalue()  # the plan would add it ...
    assert d.scoped_state() == before  # ... but nothing changed
    assert not (tmp_path / "state" / "credentials").exists()


def test_provisioned_ingress_topic_stamps_the_brokers_append_time(deployment: Deployment) -> None:
    ingress = deployment.naming.ingress_topic(deployment.agency)
    configs = ClusterAdmin(deployment.admin).topic_configs([ingress])
    assert configs[ingress]["message.timestamp.type"] == "LogAppendTime"


def test_provisioning_puts_a_create_time_ingress_topic_back_to_log_append_time(
    deployment: Deployment,
) -> None:
    ingress = deployment.naming.ingress_topic(deployment.agency)
    cluster = ClusterAdmin(deployment.admin)
    cluster.alter_topic_configs([(ingress, (("message.timestamp.type", "CreateTime"),))])
    assert cluster.topic_configs([ingress])[ingress]["message.timestamp.type"] == "CreateTime"
    result = deployment.apply()
    assert (ingress, (("message.timestamp.type", "LogAppendTime"),)) in result.diff.topics_alter
    assert cluster.topic_configs([ingress])[ingress]["message.timestamp.type"] == "LogAppendTime"
