"""The router as a long-running service: keys, trust, topics, the engine, progress.

``run_router`` loads the router's keys and the trust store, checks that the topics it
writes exist (provisioning creates them; the router never creates topics, so a typo in a
partner id cannot open a new, unprotected topic), then runs the exactly-once engine until
``stop`` is set. State is restored from the audit topic whenever partitions are assigned.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from broker.audit import RecordSigner, chain_id
from broker.crypto.encryption_keys import load_private_key
from broker.crypto.keyfiles import encryption_key_files, signing_key_file
from broker.crypto.signing_keys import load_signing_key
from broker.crypto.trust import TrustStore
from broker.crypto.trust_signature import operator_key_from_settings, trust_store_from_settings
from broker.errors import ConfigError
from broker.kafka import clients as kafka
from broker.kafka.aio import AioKafkaClients
from broker.logging import get_logger
from broker.observe.metrics import Metrics, file_digest
from broker.policy import LoadedPolicy
from broker.router.decisions import DecisionProcessor
from broker.router.engine import EngineConfig, PartitionProcessor, TransactionalEngine
from broker.router.overdue import report_overdue_holds
from broker.router.processor import ProcessorStats, RouteProcessor, Topics, processor_from_state
from broker.router.reload import LiveRouteConfig, watch
from broker.router.restore import DecidedIds, read_chain_states
from broker.router.route import RouteConfig, RouterIdentity
from broker.settings import Settings
from broker.types import AgencyId, PartnerId

_log = get_logger(__name__)


@dataclass
class RouterStats:
    """What one run of the router did (committed and uncommitted work alike)."""

    records: int = 0
    decided: int = 0
    delivered: int = 0
    quarantined: int = 0
    duplicates: int = 0
    aborted_batches: int = 0
    reloads: int = 0
    """New policy/trust-store pairs installed while running (:mod:`broker.router.reload`)."""
    reload_refusals: int = 0
    """Candidates refused (the one in force stayed); each is logged with its reason."""


def load_identity(settings: Settings, trust: TrustStore) -> RouterIdentity:
    """The router's signing key and X25519 keys from ``settings.key_dir_path``."""
    agency = settings.router_agency
    if not trust.is_router(agency):
        raise ConfigError(
            f"router_agency: {agency!r} is not marked `router: true` in the trust store "
            f"{settings.trust_store_path}; recipients would refuse its countersignatures"
        )
    secret = settings.key_passphrase
    passphrase = secret.get_secret_value().encode() if secret else None
    key_dir = settings.key_dir_path
    signing = load_signing_key(signing_key_file(key_dir, agency), agency, passphrase=passphrase)
    encryption = tuple(
        load_private_key(path, passphrase=passphrase).private_key
        for path in encryption_key_files(key_dir, agency)
    )
    if not encryption:
        raise ConfigError(
            f"key_dir: no X25519 key for the router in {key_dir} (expected "
            f"{agency}.<key>.x25519.pem); publishers seal identity fields to it"
        )
    return RouterIdentity(AgencyId(agency), signing, encryption)


def route_config(
    settings: Settings, policy: LoadedPolicy, trust: TrustStore, trust_version: str | None = None
) -> RouteConfig:
    """The pure routing configuration for ``settings`` and ``policy``."""
    return RouteConfig(
        trust_version=trust_version,
        policy=policy,
        trust=trust,
        identity=load_identity(settings, trust),
        ingress_topic_of=settings.ingress_topic,
        delivery_topic_of=settings.delivery_topic,
        max_skew=timedelta(seconds=settings.clock_skew_seconds),
    )


def output_topics(settings: Settings, policy: LoadedPolicy) -> list[str]:
    """Every topic the router writes (audit, quarantine, held, each partner's delivery topic)
    and the decisions topic it reads."""
    partners = [settings.delivery_topic(PartnerId(p.id)) for p in policy.policy.partners]
    review = [settings.held_topic, settings.decisions_topic]
    return [settings.audit_topic, settings.quarantine_topic, *review, *partners]


async def check_topics(settings: Settings, policy: LoadedPolicy) -> None:
    """Raise :class:`ConfigError` listing every output topic that does not exist."""
    async with kafka.admin_client(settings) as admin:
        existing = set(await admin.list_topics())
    missing = [t for t in output_topics(settings, policy) if t not in existing]
    if missing:
        raise ConfigError(
            "topics missing (create them with `msht provision POLICY`): " + ", ".join(missing)
        )


async def _report(
    engine: TransactionalEngine,
    totals: ProcessorStats,
    stop: asyncio.Event,
    every: float,
) -> None:
    last, last_t = 0, time.monotonic()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        now = time.monotonic()
        records = engine.stats.records
        if records != last:
            _log.info(
                "router progress",
                records=records,
                per_second=round((records - last) / (now - last_t), 1),
                delivered=totals.delivered,
                quarantined=totals.quarantined,
                duplicates=totals.duplicates,
            )
        last, last_t = records, now


async def run_router(
    settings: Settings,
    policy: LoadedPolicy,
    *,
    instance: str,
    stop: asyncio.Event,
    progress_every: float = 10.0,
    metrics: Metrics | None = None,
    reload_now: asyncio.Event | None = None,
    reload_every: float = 2.0,
) -> RouterStats:
    """Route until ``stop`` is set; returns what was done. Raises only for setup errors.

    ``metrics``: where to count what the router does (served by ``msht router`` when
    ``MSHT_METRICS_PORT`` is set). The policy file (``policy.source``) and the trust store
    are re-read when they change (polled every ``reload_every`` seconds) and when
    ``reload_now`` is set (SIGHUP), and installed between batches
    (:mod:`broker.router.reload`).
    """
    loaded = trust_store_from_settings(settings, component="router")
    if metrics is not None:
        metrics.set_loaded(
            policy_version=policy.version, trust_store=file_digest(settings.trust_store_path)
        )
    config = route_config(settings, policy, loaded.store, loaded.digest)
    await check_topics(settings, policy)
    live = LiveRouteConfig(
        config, Path(policy.source), loaded.path, operator_key_from_settings(settings)
    )
    topics = Topics(
        audit=settings.audit_topic, quarantine=settings.quarantine_topic, held=settings.held_topic
    )
    signer = RecordSigner(
        config.identity.signing_key.key_id, config.identity.signing_key.private_key
    )
    clients = AioKafkaClients(settings)
    # One set of counters for every partition, so no processor (and its de-duplication
    # window) is kept alive after its partition is revoked.
    totals = ProcessorStats(metrics=metrics)
    # Every partition's de-duplication window, so an id re-used on another partition (another
    # subject or source) is caught while this process owns both.
    decided = DecidedIds()

    async def factory(
        partitions: Sequence[tuple[str, int]],
    ) -> Mapping[tuple[str, int], PartitionProcessor]:
        chains = {tp: chain_id(*tp) for tp in partitions}
        states = await read_chain_states(
            clients, settings.audit_topic, chains.values(), window=settings.dedup_window
        )
        return {
            tp: processor_from_state(
                config,
                topics,
                states[chains[tp]],
                instance=instance,
                window=settings.dedup_window,
                signer=signer,
                stats=totals,
                # Decisions are de-duplicated per hold, apart from ingress event ids.
                decided=None if tp[0] == settings.decisions_topic else decided,
                kind=DecisionProcessor if tp[0] == settings.decisions_topic else RouteProcessor,
                live=live.current,
            )
            for tp in partitions
        }

    engine = TransactionalEngine(
        EngineConfig(
            group_id=settings.router_group,
            # Reviewers' decisions are one more input, routed in transactions like ingress.
            topic_pattern=f"^({re.escape(settings.ingress_prefix)}.*|"
            f"{re.escape(settings.decisions_topic)})$",
            transactional_id_prefix=settings.router_transactional_prefix,
        ),
        clients,
        factory,
        metrics=metrics,
    )
    _log.info(
        "router starting",
        instance=instance,
        policy_version=policy.version,
        trust_version=loaded.digest,
        group=settings.router_group,
        ingress=settings.ingress_prefix + "*",
    )
    # In the background: a router killed mid-transaction leaves the held topic unreadable
    # (read_committed) until this router's producers fence it, which happens once the engine
    # runs; waiting for the read first would stall routing for the transaction timeout.
    overdue = asyncio.create_task(report_overdue_holds(settings))
    reporter = asyncio.create_task(_report(engine, totals, stop, progress_every))
    watcher = asyncio.create_task(
        watch(
            live, stop, wake=reload_now, every=reload_every,
            vet=lambda candidate: check_topics(settings, candidate),
        )
    )  # fmt: skip
    try:
        with kafka.translate_errors(settings):
            await engine.run(stop)
    finally:
        stop.set()
        await reporter
        await watcher
        overdue.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await overdue
    stats = RouterStats(
        records=engine.stats.records,
        decided=totals.decided,
        delivered=totals.delivered,
        quarantined=totals.quarantined,
        duplicates=totals.duplicates,
        aborted_batches=engine.stats.aborted_batches,
        reloads=live.stats.applied,
        reload_refusals=live.stats.refused,
    )
    _log.info("router stopped", instance=instance, **stats.__dict__)
    return stats
