"""An isolated exchange for router tests: its own topics, keys, trust store and router group.

Every agency and partner of the policy gets an Ed25519 signing key and an X25519 key; the
router gets both and is marked ``router: true``. Publishers seal tagged fields to the
router, as ``msht publish`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.exchange.signed import (
    EnvelopeOpener,
    EnvelopeSealer,
    RouterKey,
    router_key_from_settings,
)
from adapters.intake.identity import derive_event_id
from adapters.protocol import CanonicalEvent, DeliveredEvent
from adapters.registry import parser_for
from broker.audit import AuditRecord, parse_record
from broker.crypto.encryption_keys import load_private_key
from broker.crypto.keyfiles import encryption_key_files, signing_key_file
from broker.crypto.keyring import generate_agency_keys, sign_trust_store
from broker.crypto.signing_keys import SigningKey, generate_signing_key, load_signing_key
from broker.crypto.trust import TrustStore, load_trust_store, save_trust_store
from broker.crypto.trust_signature import OPERATOR, operator_public_text
from broker.errors import CodecError
from broker.events.envelope import decode_envelope
from broker.kafka import clients as kafka
from broker.policy import LoadedPolicy, load_policy
from broker.review.notice import Notice, is_notice, open_notice
from broker.router.service import RouterStats, output_topics, run_router
from broker.settings import Settings
from broker.types import AgencyId, PartnerId
from tests.unit.adapter_samples import sample

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "deploy" / "policy.yaml"


def subject_key(value: bytes) -> bytes | None:
    """The Kafka key a publisher gives ``value``: its subject, or none if it is no envelope."""
    try:
        return decode_envelope(value).header.subject.encode()
    except CodecError:
        return None


@dataclass
class RouterExchange:
    """Settings naming this test's topics and files; sealers for the publishing agencies."""

    settings: Settings
    policy: LoadedPolicy
    sealers: dict[str, EnvelopeSealer]
    agencies: tuple[str, ...]
    router_task: asyncio.Task[RouterStats] | None = None
    router_stop: asyncio.Event = field(default_factory=asyncio.Event)
    operator: SigningKey | None = None
    """The operator key the exchange's trust store is signed with."""

    def replace_trust_store(self, store: TrustStore) -> None:
        """Write ``store`` as the exchange's trust store, signed by the operator as every
        process of the exchange requires."""
        save_trust_store(store, self.settings.trust_store_path)
        if self.operator is not None:
            sign_trust_store(self.settings.trust_store_path, self.operator)

    # --- topics --------------------------------------------------------------------------

    def topics(self) -> list[str]:
        """Every topic of this exchange."""
        ingress = [self.settings.ingress_topic(AgencyId(a)) for a in self.agencies]
        return [*ingress, *output_topics(self.settings, self.policy)]

    def env(self) -> dict[str, str]:
        """``MSHT_*`` variables that make a subprocess (the CLI) use this exchange."""
        s = self.settings
        return {
            "MSHT_DEV": "1",
            "MSHT_STATE_DIR": str(s.state_dir),
            "MSHT_INGRESS_PREFIX": s.ingress_prefix,
            "MSHT_DELIVERY_PREFIX": s.delivery_prefix,
            "MSHT_AUDIT_TOPIC": s.audit_topic,
            "MSHT_QUARANTINE_TOPIC": s.quarantine_topic,
            "MSHT_HELD_TOPIC": s.held_topic,
            "MSHT_DECISIONS_TOPIC": s.decisions_topic,
            "MSHT_REJECTED_TOPIC": s.rejected_topic,
            "MSHT_ROUTER_GROUP": s.router_group,
            "MSHT_ROUTER_TRANSACTIONAL_PREFIX": s.router_transactional_prefix,
            "MSHT_BOOTSTRAP_SERVERS": s.bootstrap_servers,
            "MSHT_POLICY_FILE": str(POLICY),
            **({"MSHT_OPERATOR_KEY": s.operator_key} if s.operator_key else {}),
        }

    # --- publishing ----------------------------------------------------------------------

    def seal(self, agency: str, event: CanonicalEvent) -> bytes:
        """``event`` as ``agency`` publishes it: tagged fields sealed to the router, signed."""
        sealer = self.sealers[agency]
        return sealer.seal(event, derive_event_id(sealer.agency, event))

    def sample_event(self, name: str, fmt: str, index: int = 0) -> CanonicalEvent:
        """The canonical event of ``deploy/examples/<name>`` read as ``fmt`` (e.g. nrm-json)."""
        adapter = parser_for(fmt)
        result = adapter.parse(sample(name), fmt)
        return adapter.to_canonical(result.accepted[index].document)

    async def publish(self, agency: str, values: Iterable[bytes], topic: str | None = None) -> None:
        """Produce ``values`` to ``agency``'s ingress topic (or ``topic``), acks=all.

        Keyed as a publisher keys them, by the header's subject (no key for bytes that are
        not an envelope), so the default partitioner puts each where the router expects it.
        """
        target = topic or self.settings.ingress_topic(AgencyId(agency))
        async with kafka.producer(self.settings) as producer:
            for value in values:
                await producer.send_and_wait(target, value, key=subject_key(value))

    # --- the router ----------------------------------------------------------------------

    def start_router(self, instance: str = "test-router") -> None:
        """Run the router in this event loop until :meth:`stop_router`."""
        self.router_stop = asyncio.Event()
        self.router_task = asyncio.create_task(
            run_router(
                self.settings, self.policy, instance=instance, stop=self.router_stop,
                progress_every=2.0,
            )
        )  # fmt: skip

    async def stop_router(self) -> RouterStats:
        """Stop the in-process router and return its statistics."""
        assert self.router_task is not None
        self.router_stop.set()
        stats = await asyncio.wait_for(self.router_task, 60)
        self.router_task = None
        return stats

    def spawn_router(self, instance: str, log: Path) -> subprocess.Popen[bytes]:
        """``msht router`` as a separate process (so it can be SIGKILLed)."""
        env = {**os.environ, **self.env(), "PYTHONUNBUFFERED": "1"}
        with log.open("ab") as out:
            return subprocess.Popen(
                [str(Path(sys.executable).parent / "msht"), "--log-level", "WARNING", "router",
                 "--instance", instance],
                env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
            )  # fmt: skip

    # --- reading -------------------------------------------------------------------------

    async def read(self, topic: str, *, expected: int = 0, wait: float = 30.0) -> list[Any]:
        """Committed records of ``topic`` from the start (at least ``expected``, if they come)."""
        records: list[Any] = []
        async with kafka.consumer(
            self.settings, topic, group_id=None, isolation_level="read_committed"
        ) as consumer:
            deadline = time.monotonic() + wait
            quiet = 0
            while time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=300)
                for recs in batch.values():
                    records.extend(recs)
                quiet = 0 if batch else quiet + 1
                if len(records) >= expected and quiet >= 2:
                    break
        return records

    def opener(self, partner: str) -> EnvelopeOpener:
        """The partner's subscriber-side verifier, with its own X25519 keys."""
        keys = [
            load_private_key(p).private_key
            for p in encryption_key_files(self.settings.key_dir_path, partner)
        ]
        return EnvelopeOpener(
            load_trust_store(self.settings.trust_store_path),
            partner=PartnerId(partner),
            encryption_keys=keys,
        )

    async def delivered(
        self, partner: str, *, expected: int = 0, wait: float = 30.0
    ) -> list[DeliveredEvent]:
        """The partner's deliveries, verified and opened as its subscriber would."""
        topic = self.settings.delivery_topic(PartnerId(partner))
        records = await self.read(topic, expected=expected, wait=wait)
        opener = self.opener(partner)
        # Status notices about the partner's own held events are not deliveries.
        return [opener.open(r.value) for r in records if not is_notice(r.value)]

    async def notices(self, partner: str, *, wait: float = 10.0) -> list[Notice]:
        """The status notices on the partner's delivery topic, their router signature checked."""
        topic = self.settings.delivery_topic(PartnerId(partner))
        trust = load_trust_store(self.settings.trust_store_path)
        records = await self.read(topic, wait=wait)
        return [open_notice(r.value, trust) for r in records if is_notice(r.value)]

    async def audit(self, *, expected: int = 0, wait: float = 30.0) -> list[AuditRecord]:
        """Every committed audit record."""
        records = await self.read(self.settings.audit_topic, expected=expected, wait=wait)
        return [parse_record(r.value) for r in records]

    async def wait_for_audit(self, count: int, wait: float = 60.0) -> list[AuditRecord]:
        """Poll until at least ``count`` audit records are committed (or ``wait`` passes)."""
        deadline = time.monotonic() + wait
        while True:
            records = await self.audit(expected=count, wait=5.0)
            if len(records) >= count or time.monotonic() > deadline:
                return records


PUBLISHERS = ("met-police", "cps", "nca", "ilo-nl")


async def make_router_exchange(
    base: Settings,
    state_dir: Path,
    *,
    partitions: int = 1,
    policy: Path = POLICY,
    replication_factor: int = 1,
) -> RouterExchange:
    """Keys, trust store and created topics (``replication_factor`` replicas) for a fresh
    exchange."""
    tag = uuid.uuid4().hex[:10]
    settings = base.model_copy(
        update={
            "state_dir": state_dir,
            "trust_store": None,
            "key_dir": None,
            "ingress_prefix": f"t{tag}.ingress.",
            "delivery_prefix": f"t{tag}.deliver.",
            "audit_topic": f"t{tag}.audit",
            "quarantine_topic": f"t{tag}.quarantine",
            "held_topic": f"t{tag}.held",
            "decisions_topic": f"t{tag}.decisions",
            "rejected_topic": f"t{tag}.rejected",
            "router_group": f"t{tag}.router",
            "router_transactional_prefix": f"t{tag}.router-",
            "policy_file": policy,
        }
    )
    loaded = load_policy(policy)
    # The trust store is signed and every process of the exchange checks it, as in production.
    operator = generate_signing_key(OPERATOR)
    settings = settings.model_copy(update={"operator_key": operator_public_text(operator)})
    key_dir, trust = settings.key_dir_path, settings.trust_store_path
    generate_agency_keys(key_dir, trust, settings.router_agency, router=True, operator=operator)
    reviewers = [r.id for r in loaded.policy.reviewers]
    parties = dict.fromkeys([*PUBLISHERS, *(p.id for p in loaded.policy.partners), *reviewers])
    for party in parties:
        generate_agency_keys(key_dir, trust, party, operator=operator)
    router_key: RouterKey | None = router_key_from_settings(settings)
    assert router_key is not None
    sealers = {
        a: EnvelopeSealer(load_signing_key(signing_key_file(key_dir, a), a), router_key=router_key)
        for a in PUBLISHERS
    }
    exchange = RouterExchange(settings, loaded, sealers, PUBLISHERS, operator=operator)
    await kafka.ensure_topics(
        settings, exchange.topics(), partitions=partitions, replication_factor=replication_factor
    )
    return exchange


@contextlib.asynccontextmanager
async def router_exchange(
    base: Settings, state_dir: Path, **kwargs: Any
) -> AsyncIterator[RouterExchange]:
    """:func:`make_router_exchange`, with its router stopped and topics deleted afterwards."""
    exchange = await make_router_exchange(base, state_dir, **kwargs)
    try:
        yield exchange
    finally:
        if exchange.router_task is not None:
            exchange.router_stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(exchange.router_task, 30)
        await kafka.delete_topics(exchange.settings, exchange.topics())


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``process`` and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
