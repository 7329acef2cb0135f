"""Live reload of the router's policy and trust store: installed whole between batches, a
candidate that does not validate refused with its reason while the one in force stays."""

from __future__ import annotations

import asyncio
import shutil
from datetime import timedelta
from pathlib import Path

from broker.audit import AuditChain, ChainHead, parse_record
from broker.crypto.keyring import generate_agency_keys, sign_trust_store
from broker.crypto.signing_keys import generate_signing_key
from broker.crypto.trust_signature import OPERATOR, TRAILER, load_authentic_trust_store
from broker.kafka.records import Incoming
from broker.policy import load_policy
from broker.router.processor import RouteProcessor, Topics
from broker.router.reload import LiveRouteConfig
from broker.router.restore import DedupWindow
from broker.router.route import RouteConfig, RouterIdentity
from broker.types import AgencyId

REPO = Path(__file__).resolve().parents[2]
OPERATOR_KEY = generate_signing_key(OPERATOR)


def _live(tmp_path: Path, *, operator: bool = False) -> LiveRouteConfig:
    key_dir, trust = tmp_path / "keys", tmp_path / "trust.yaml"
    signer = OPERATOR_KEY if operator else None
    router = generate_agency_keys(key_dir, trust, "router", router=True, operator=signer)
    generate_agency_keys(key_dir, trust, "met-police", operator=signer)
    policy_path = tmp_path / "policy.yaml"
    shutil.copy(REPO / "deploy" / "policy.yaml", policy_path)
    assert router.signing is not None
    assert router.encryption is not None
    op_public = OPERATOR_KEY.public_key if operator else None
    loaded = load_authentic_trust_store(trust, op_public)
    config = RouteConfig(
        policy=load_policy(policy_path),
        trust=loaded.store,
        identity=RouterIdentity(
            AgencyId("router"), router.signing, (router.encryption.private_key,)
        ),
        ingress_topic_of=lambda agency: f"ingress.{agency}",
        delivery_topic_of=lambda partner: f"deliver.{partner}",
        max_skew=timedelta(minutes=5),
        trust_version=loaded.digest,
    )
    return LiveRouteConfig(config, policy_path, trust, op_public)


def _reload(live: LiveRouteConfig, *, force: bool = False) -> bool:
    return asyncio.run(live.reload(force=force))


def test_an_unchanged_pair_of_files_installs_nothing(tmp_path: Path) -> None:
    live = _live(tmp_path)
    before = live.current()
    assert not _reload(live, force=True)
    assert live.current() is before
    assert (live.stats.applied, live.stats.refused) == (0, 0)


def test_a_changed_policy_is_installed_with_its_new_version(tmp_path: Path) -> None:
    live = _live(tmp_path)
    old = live.current().policy.version
    live.policy_path.write_text(live.policy_path.read_text() + "\n# reviewed\n")
    assert _reload(live)
    assert live.current().policy.version not in (old, None)
    assert live.current().policy.version == load_policy(live.policy_path).version
    assert live.stats.applied == 1


def test_a_changed_trust_store_is_installed_with_its_digest(tmp_path: Path) -> None:
    live = _live(tmp_path)
    old = live.current().trust_version
    generate_agency_keys(tmp_path / "keys", live.trust_path, "cps")
    assert _reload(live)
    assert live.current().trust_version != old
    assert live.current().trust.signing_keys("cps")


def test_a_policy_that_does_not_parse_is_refused_and_the_old_one_stays(tmp_path: Path) -> None:
    live = _live(tmp_path)
    before = live.current()
    live.policy_path.write_text("partners: [unclosed\n")
    assert not _reload(live)
    assert live.current() is before
    assert live.stats.refused == 1
    assert live.stats.last_refusal is not None
    assert live.stats.last_refusal.what == "policy"
    assert live.stats.last_refusal.reason


def test_a_policy_check_would_reject_is_refused_with_its_problems(tmp_path: Path) -> None:
    live = _live(tmp_path)
    before = live.current()
    text = live.policy_path.read_text()
    # A rule naming a partner the policy does not define: `msht policy check` rejects it.
    live.policy_path.write_text(
        text.replace("deliver: {to: [nca]", "deliver: {to: [nca, no-such-partner]", 1)
    )
    load_policy(live.policy_path)  # it parses: the check is what refuses it
    assert not _reload(live)
    assert live.current() is before
    assert live.stats.last_refusal is not None
    assert "no-such-partner" in live.stats.last_refusal.reason


def test_a_refused_file_is_not_retried_until_it_changes(tmp_path: Path) -> None:
    live = _live(tmp_path)
    live.policy_path.write_text("partners: [unclosed\n")
    _reload(live)
    _reload(live)
    assert live.stats.refused == 1


def test_a_trust_store_without_the_router_is_refused(tmp_path: Path) -> None:
    live = _live(tmp_path)
    before = live.current()
    text = live.trust_path.read_text()
    live.trust_path.write_text(text.replace("router: true", "router: false"))
    assert not _reload(live)
    assert live.current() is before
    assert live.stats.last_refusal is not None
    assert live.stats.last_refusal.what == "trust store"
    assert "router: true" in live.stats.last_refusal.reason


def test_a_trust_store_that_does_not_parse_is_refused(tmp_path: Path) -> None:
    live = _live(tmp_path)
    before = live.current()
    live.trust_path.write_text("agencies: {{{\n")
    assert not _reload(live)
    assert live.current() is before
    assert live.stats.refused == 1


def test_an_unsigned_trust_store_is_refused_when_an_operator_key_is_set(tmp_path: Path) -> None:
    live = _live(tmp_path, operator=True)
    before = live.current()
    generate_agency_keys(tmp_path / "keys", live.trust_path, "cps")  # edits without signing
    text = live.trust_path.read_text()
    live.trust_path.write_text(text.split(TRAILER)[0].rstrip() + "\n")
    assert not _reload(live)
    assert live.current() is before
    assert live.stats.last_refusal is not None
    assert live.stats.last_refusal.what == "trust store"


def test_a_store_signed_by_another_operator_key_is_refused(tmp_path: Path) -> None:
    live = _live(tmp_path, operator=True)
    before = live.current()
    sign_trust_store(live.trust_path, generate_signing_key(OPERATOR))
    assert not _reload(live)
    assert live.current() is before
    assert live.stats.refused == 1


def test_a_store_the_operator_re_signed_is_installed(tmp_path: Path) -> None:
    live = _live(tmp_path, operator=True)
    generate_agency_keys(tmp_path / "keys", live.trust_path, "cps", operator=OPERATOR_KEY)
    assert _reload(live)
    assert live.stats.refused == 0


def _undecodable(offset: int) -> Incoming:
    return Incoming(
        topic="ingress.met-police",
        partition=0,
        offset=offset,
        key=b"k",
        value=b"not an envelope",
        timestamp_ms=0,
        timestamp_type=1,
        partitions=1,
    )


def _processor(live: LiveRouteConfig) -> RouteProcessor:
    chain = AuditChain(ChainHead.genesis("ingress.met-police/0"), router="unit")
    return RouteProcessor(
        live.current(), Topics("audit", "q"), chain, DedupWindow(10), live=live.current
    )


def _audited(processor: RouteProcessor, offset: int) -> tuple[str, str | None]:
    out = processor.process(_undecodable(offset))
    record = parse_record(next(o for o in out if o.topic == "audit").value)
    return record.policy_version, record.trust_version


def _change_both(live: LiveRouteConfig, tmp_path: Path) -> None:
    live.policy_path.write_text(live.policy_path.read_text() + "\n# v2\n")
    generate_agency_keys(tmp_path / "keys", live.trust_path, "cps")
    assert _reload(live)


def _versions(config: RouteConfig) -> tuple[str, str | None]:
    return config.policy.version, config.trust_version


def test_a_reload_during_a_batch_waits_for_the_next_batch(tmp_path: Path) -> None:
    live = _live(tmp_path)
    processor = _processor(live)
    first = _versions(live.current())
    assert _audited(processor, 0) == first
    _change_both(live, tmp_path)
    # Still inside the batch that began before the reload: the old pair, both together.
    assert _audited(processor, 1) == first
    processor.committed()
    assert _audited(processor, 2) == _versions(live.current()) != first


def test_a_batch_after_an_abort_reads_the_configuration_again(tmp_path: Path) -> None:
    live = _live(tmp_path)
    processor = _processor(live)
    _audited(processor, 0)
    _change_both(live, tmp_path)
    processor.rolled_back()
    assert _audited(processor, 0) == _versions(live.current())


def test_an_idle_partition_decides_its_next_batch_under_what_was_installed_meanwhile(
    tmp_path: Path,
) -> None:
    # Regression: the configuration was read when a batch ended, so a partition idle
    # across a reload decided its next batch under the old one.
    live = _live(tmp_path)
    processor = _processor(live)
    _audited(processor, 0)
    processor.committed()
    _change_both(live, tmp_path)
    assert _audited(processor, 1) == _versions(live.current())


def test_the_first_batch_reads_the_configuration_in_force_then(tmp_path: Path) -> None:
    live = _live(tmp_path)
    processor = _processor(live)
    _change_both(live, tmp_path)
    assert _audited(processor, 0) == _versions(live.current())
