"""Live reload on the real broker: a policy changed and a key rotated then revoked while
events flow; nothing lost, each event decided once, under the versions in force when it was
decided (the audit record's ``policy_version`` and ``trust_version``). And ``msht policy
diff --replay`` against the recorded traffic."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from adapters.exchange.signed import EnvelopeSealer, router_key_from_settings
from broker.audit import AuditRecord
from broker.crypto.key_lifecycle import revoke_key, rotate_key
from broker.crypto.keyfiles import signing_key_file
from broker.crypto.keyring import sign_trust_store
from broker.crypto.signing_keys import generate_signing_key, load_signing_key
from broker.crypto.trust import load_trust_store
from broker.crypto.trust_signature import (
    OPERATOR,
    load_authentic_trust_store,
    operator_public_text,
)
from broker.policy import load_policy
from broker.router.service import run_router
from broker.settings import Settings
from broker.types import EventId, Outcome
from tests.integration.router_env import POLICY, REPO, RouterExchange, router_exchange

REFERRAL = ("police/nrm-referral.json", "nrm-json")
AGENCY = "met-police"


def _without_rule(rule_id: str) -> str:
    text = POLICY.read_text()
    start = text.index(f"  - id: {rule_id}\n")
    end = text.index("\n  - id: ", start + 1)
    return text[:start] + text[end + 1 :]


def _start(ex: RouterExchange, wake: asyncio.Event | None = None) -> None:
    ex.router_stop = asyncio.Event()
    ex.router_task = asyncio.create_task(
        run_router(
            ex.settings, ex.policy, instance="reload-test", stop=ex.router_stop,
            progress_every=2.0, reload_now=wake, reload_every=0.3,
        )
    )  # fmt: skip


async def _publish(ex: RouterExchange, agency: str = AGENCY) -> EventId:
    event_id = EventId(str(uuid.uuid4()))
    await ex.publish(agency, [ex.sealers[agency].seal(ex.sample_event(*REFERRAL), event_id)])
    return event_id


async def _decisions(ex: RouterExchange, ids: Sequence[str]) -> dict[str, list[AuditRecord]]:
    """Every audit record of each of ``ids``, once all of them have one (or 90 s pass)."""
    wanted = set(ids)
    found: dict[str, list[AuditRecord]] = {}
    for _ in range(45):
        records = await ex.audit(expected=len(wanted), wait=2.0)
        found = {i: [r for r in records if r.event_id == i] for i in wanted}
        if all(found.values()):
            break
    return found


def _nca(record: AuditRecord) -> Outcome:
    return next(o.outcome for o in record.outcomes if o.partner == "nca")


async def test_a_policy_changed_while_events_flow_decides_each_event_once_under_one_version(
    settings: Settings, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    shutil.copy(POLICY, policy)
    async with router_exchange(settings, tmp_path / "state", policy=policy) as ex:
        _start(ex)
        old = ex.policy.version
        ids: list[str] = []

        async def flow() -> None:
            for _ in range(24):
                ids.append(await _publish(ex))
                await asyncio.sleep(0.1)

        publishing = asyncio.create_task(flow())
        await asyncio.sleep(1.2)
        policy.write_text(_without_rule("referrals-to-nca"))
        new = load_policy(policy).version
        await publishing
        found = await _decisions(ex, ids)

        assert {i: len(rs) for i, rs in found.items()} == dict.fromkeys(ids, 1)
        records = sorted((rs[0] for rs in found.values()), key=lambda r: r.seq)
        versions = [r.policy_version for r in records]
        assert set(versions) == {old, new}
        # Once the new version decides, the old one never does again on this chain.
        assert versions == sorted(versions, key=lambda v: v == new)
        for record in records:
            assert (_nca(record) == Outcome.DELIVER) == (record.policy_version == old)
        deliveries = await ex.read(
            ex.settings.delivery_topic("nca"),  # type: ignore[arg-type]
            expected=versions.count(old),
        )
        assert len(deliveries) == versions.count(old)
        stats = await ex.stop_router()
        assert (stats.reloads, stats.reload_refusals) == (1, 0)


async def test_a_policy_that_does_not_validate_is_refused_and_the_old_one_decides(
    settings: Settings, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    shutil.copy(POLICY, policy)
    async with router_exchange(settings, tmp_path / "state", policy=policy) as ex:
        wake = asyncio.Event()
        _start(ex, wake)
        first = await _publish(ex)
        await _decisions(ex, [first])
        policy.write_text(POLICY.read_text().replace("deliver: {to: [nca]", "deliver: {to: [x]"))
        wake.set()
        await asyncio.sleep(1.0)
        second = await _publish(ex)
        found = await _decisions(ex, [second])
        assert [r.policy_version for r in found[second]] == [ex.policy.version]
        stats = await ex.stop_router()
        assert (stats.reloads, stats.reload_refusals) == (0, 1)


async def test_a_key_rotated_then_revoked_while_events_flow(
    settings: Settings, tmp_path: Path
) -> None:
    async with router_exchange(settings, tmp_path / "state") as ex:
        # This test is the operator: re-sign the store with a key it holds.
        operator = generate_signing_key(OPERATOR)
        trust = ex.settings.trust_store_path
        sign_trust_store(trust, operator)
        ex.settings = ex.settings.model_copy(
            update={"operator_key": operator_public_text(operator)}
        )
        key_dir = ex.settings.key_dir_path
        v1 = load_authentic_trust_store(trust, operator.public_key).digest
        wake = asyncio.Event()
        _start(ex, wake)
        router_key = router_key_from_settings(ex.settings)
        old_sealer = ex.sealers[AGENCY]
        old_key = load_signing_key(signing_key_file(key_dir, AGENCY), AGENCY).key_id

        before = [await _publish(ex) for _ in range(3)]
        await _decisions(ex, before)

        # Rotate (the old key stays valid for an hour), distribute, reload on SIGHUP.
        rotate_key(key_dir, trust, AGENCY, "sign", timedelta(hours=1), operator=operator)
        v2 = load_authentic_trust_store(trust, operator.public_key).digest
        wake.set()
        overlap = [await _publish(ex) for _ in range(3)]  # still the old key: valid
        new_key = load_signing_key(signing_key_file(key_dir, AGENCY), AGENCY)
        assert new_key.key_id != old_key
        ex.sealers[AGENCY] = EnvelopeSealer(new_key, router_key=router_key)
        rotated = [await _publish(ex) for _ in range(3)]
        await _decisions(ex, [*overlap, *rotated])

        # The old key leaks: revoked from now; the new store reaches the router.
        revoke_key(trust, old_key, datetime.now(UTC), "leaked in a test", operator=operator)
        v3 = load_authentic_trust_store(trust, operator.public_key).digest
        wake.set()
        await asyncio.sleep(1.5)
        ex.sealers[AGENCY] = old_sealer
        leaked = [await _publish(ex)]
        ex.sealers[AGENCY] = EnvelopeSealer(new_key, router_key=router_key)
        after = [await _publish(ex) for _ in range(3)]

        ids = [*before, *overlap, *rotated, *leaked, *after]
        found = await _decisions(ex, ids)
        assert {i: len(rs) for i, rs in found.items()} == dict.fromkeys(ids, 1)
        one = {i: rs[0] for i, rs in found.items()}
        assert {one[i].trust_version for i in before} == {v1}
        assert {one[i].trust_version for i in after} == {v3}
        assert one[leaked[0]].trust_version == v3
        assert one[leaked[0]].kind == "quarantine"
        for i in [*before, *overlap, *rotated, *after]:
            assert one[i].kind == "decision", i
            assert one[i].trust_version in (v1, v2, v3)
        # New-key events decided under a store holding the new key, never the first one.
        assert all(one[i].trust_version in (v2, v3) for i in rotated)
        records = sorted(one.values(), key=lambda r: r.seq)
        order = {v1: 0, v2: 1, v3: 2}
        seen = [order[r.trust_version] for r in records if r.trust_version is not None]
        assert seen == sorted(seen)
        assert load_trust_store(trust).key(old_key).revoked_at is not None


async def test_policy_diff_replay_names_the_recorded_events_a_removed_rule_would_withhold(
    settings: Settings, tmp_path: Path
) -> None:
    async with router_exchange(settings, tmp_path / "state") as ex:
        _start(ex)
        ids = [await _publish(ex) for _ in range(3)]
        await _decisions(ex, ids)
        await ex.stop_router()
        proposed = tmp_path / "proposed.yaml"
        proposed.write_text(_without_rule("referrals-to-nca"))
        msht = str(Path(sys.executable).parent / "msht")
        done = await asyncio.to_thread(
            subprocess.run,
            [msht, "--log-level", "ERROR", "policy", "diff", str(POLICY), str(proposed),
             "--replay"],
            env={**os.environ, **ex.env()}, capture_output=True, text=True, cwd=REPO,
            timeout=120,
        )  # fmt: skip
        assert done.returncode == 1, done.stderr
        out = done.stdout
        assert "rule referrals-to-nca: removed" in out
        assert "replay: 3 recorded event(s) re-decided, 0 the router quarantines" in out
        lines = [line for line in out.splitlines() if line.startswith("  event ")]
        assert sorted(line.split()[1] for line in lines) == sorted(ids)
        assert all("-> nca:" in line and "by referrals-to-nca" in line for line in lines)
