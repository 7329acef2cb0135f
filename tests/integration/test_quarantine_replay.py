"""Issue 18: a quarantined input replayed after the fix is decided once, and the audit
trail links the replay to the quarantine record (real broker, real router).

The story: met-police signs with a key the router's trust store does not list yet, so the
router quarantines the event as ``unverified``; the operator adds the key to the trust
store, restarts the router and replays the quarantine record; the router delivers it once
and its decision record names the quarantine record in ``replay_of``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.exchange.signed import EnvelopeSealer, router_key_from_settings
from adapters.intake.identity import derive_event_id
from broker.audit import AuditRecord
from broker.cli import main
from broker.cli.quarantine import read_quarantine, replay
from broker.crypto.keyring import generate_agency_keys, sign_trust_store
from broker.crypto.signing_keys import generate_signing_key
from broker.crypto.trust_signature import OPERATOR, operator_public_text
from broker.settings import Settings
from tests.integration.router_env import RouterExchange, router_exchange

CHARGE = ("police/case-charge.json", "case-json")


@pytest.fixture
async def exchange(settings: Settings, tmp_path: Path) -> AsyncIterator[RouterExchange]:
    async with router_exchange(settings, tmp_path) as ex:
        yield ex


async def _records(ex: RouterExchange, event_id: str, count: int) -> list[AuditRecord]:
    """The audit records about ``event_id`` once there are ``count`` (or after 120 s: a
    router sharing a loaded broker may take a while to join its group)."""
    deadline = time.monotonic() + 120
    while True:
        found = [r for r in await ex.audit(wait=1.0) if r.event_id == event_id]
        if len(found) >= count or time.monotonic() > deadline:
            return found


async def test_replay_after_trust_fix_is_delivered_once_and_audited_as_replay_of_quarantine(
    exchange: RouterExchange,
) -> None:
    ex = exchange
    # An operator key this test holds, so it can change the trust store as an operator would.
    operator = generate_signing_key(OPERATOR)
    ex.settings = ex.settings.model_copy(update={"operator_key": operator_public_text(operator)})
    trust = ex.settings.trust_store_path
    sign_trust_store(trust, operator)
    before = trust.read_bytes()
    fresh = generate_agency_keys(
        ex.settings.key_dir_path, trust, "met-police", encryption=False, operator=operator
    )
    fixed = trust.read_bytes()
    trust.write_bytes(before)  # the router starts without the new key
    assert fresh.signing is not None
    router_key = router_key_from_settings(ex.settings)
    assert router_key is not None
    sealer = EnvelopeSealer(fresh.signing, router_key=router_key)
    event = ex.sample_event(*CHARGE)
    event_id = derive_event_id(sealer.agency, event)

    ex.start_router("replay-1")
    await ex.publish("met-police", [sealer.seal(event, event_id)])
    [quarantined] = await _records(ex, event_id, 1)
    await ex.stop_router()
    assert (quarantined.kind, quarantined.reason) == ("quarantine", "unverified")

    trust.write_bytes(fixed)  # the fix: the new key is trusted
    ex.start_router("replay-2")
    entries = [e for e in await read_quarantine(ex.settings) if e.event_id == event_id]
    [entry] = entries
    assert entry.reason == "unverified"
    assert entry.replayable
    await replay(ex.settings, [entry])

    records = await _records(ex, event_id, 2)
    decisions = [r for r in records if r.kind == "decision"]
    assert [r.replay_of for r in decisions] == [entry.link]
    cps = [d for d in await ex.delivered("cps", expected=1) if d.event_id == event_id]
    assert len(cps) == 1


async def test_quarantine_list_json_names_identifiers_and_reason_never_content(
    exchange: RouterExchange,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ex = exchange
    ex.start_router("list-1")
    await ex.publish("met-police", [b"\x00not an envelope"])
    await ex.wait_for_audit(1)
    await ex.stop_router()
    for name, value in ex.env().items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    # The CLI runs its own event loop, so it runs in a thread of its own here.
    assert await asyncio.to_thread(main, ["quarantine", "list", "-o", "json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["reason"] == "undecodable"
    assert listed["source_topic"] == ex.settings.ingress_topic("met-police")  # type: ignore[arg-type]
    assert "not an envelope" not in json.dumps(listed)
    assert await asyncio.to_thread(main, ["quarantine", "show", listed["id"], "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == listed["id"]
