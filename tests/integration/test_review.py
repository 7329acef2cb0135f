"""Review of held events end to end on the real broker, with the router SIGKILLed in between.

An inbound alert from the Netherlands marked SIENA H3 is held for the two UK partners that
would otherwise receive it (the Metropolitan Police and the NCA). The router process is
killed after it held the event; the duty officer lists the queue, opens the hold, releases
it for the NCA and refuses it for the police with the ``msht held`` commands; a new router
process carries both decisions out. The NCA receives the alert once, the police never; a
second decision on the same hold is quarantined as ``already-decided``; ``msht audit verify``
passes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from broker.audit import AuditRecord
from broker.crypto.keyfiles import signing_key_file
from broker.crypto.signing_keys import load_signing_key
from broker.errors import ReviewError
from broker.review.decision import Verdict, write_decision
from broker.review.held import HeldRecord, read_held
from broker.router.overdue import overdue_holds
from broker.settings import Settings
from broker.types import EventId
from tests.integration.router_env import REPO, RouterExchange, kill, router_exchange

INBOUND = ("overseas/alert-inbound.xml", "alert-xml")
RESTRICTION = "Not for onward transmission to prosecutors without Europol consent"
REVIEWER = "duty-officer"


@pytest.fixture
async def exchange(settings: Settings, tmp_path: Path) -> AsyncIterator[RouterExchange]:
    async with router_exchange(settings, tmp_path) as ex:
        yield ex


def _msht(ex: RouterExchange, *args: str) -> str:
    """Run the ``msht`` command line against this exchange; its standard output."""
    env = {**os.environ, **ex.env(), "MSHT_REVIEWER": REVIEWER}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "msht"), "--log-level", "WARNING", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"msht {' '.join(args)}: {done.stderr}"
    return done.stdout


async def _audit_for(ex: RouterExchange, event_id: str, count: int = 1) -> list[AuditRecord]:
    for _ in range(60):
        found = [r for r in await ex.audit(wait=1.0) if r.event_id == event_id]
        if len(found) >= count:
            return found
    raise AssertionError(f"no audit record for {event_id}")


async def test_held_alert_released_for_one_partner_and_refused_for_the_other_across_a_sigkill(
    exchange: RouterExchange, tmp_path: Path
) -> None:
    log = tmp_path / "router.log"
    first = exchange.spawn_router("review-1", log)
    try:
        event = exchange.sample_event(*INBOUND)
        event = dataclasses.replace(
            event,
            markings={**event.markings, "siena_handling": "H3", "siena_restrictions": RESTRICTION},
        )
        event_id = EventId(str(uuid.uuid4()))
        await exchange.publish("ilo-nl", [exchange.sealers["ilo-nl"].seal(event, event_id)])
        [held_audit] = await _audit_for(exchange, event_id)
        held_for = {o.partner for o in held_audit.outcomes if o.outcome == "held"}
        assert held_for == {"met-police", "nca"}
    finally:
        kill(first)

    # The router is gone: the hold is on the held topic, not in its memory.
    [waiting] = json.loads(await asyncio.to_thread(_msht, exchange, "held", "list", "-o", "json"))
    assert waiting["event_id"] == event_id
    assert {w["partner"] for w in waiting["waiting"]} == {"met-police", "nca"}
    hold_id = waiting["hold_id"]
    # Older than the warning age (made tiny here), it is named when a router starts.
    soon = exchange.settings.model_copy(update={"held_warn_hours": 1e-9})
    assert [w.record.hold_id for w in await overdue_holds(soon)] == [hold_id]
    # The audit trail says the same: both holds open, with their age.
    [open_held] = await asyncio.to_thread(_held_in_audit, exchange)
    assert {(r["partner"], r["state"]) for r in open_held["review"]} == {
        ("met-police", "open"),
        ("nca", "open"),
    }
    shown = json.loads(await asyncio.to_thread(_msht, exchange, "held", "show", hold_id))
    assert RESTRICTION in shown["opened"]["holds"][0]["reason"]

    await asyncio.to_thread(
        _msht,
        exchange,
        "held",
        "release",
        hold_id,
        "--partner",
        "nca",
        "--reason",
        "Europol agreed",
    )
    await asyncio.to_thread(
        _msht, exchange, "held", "refuse", hold_id, "--partner", "met-police",
        "--reason", "prosecution restriction applies",
    )  # fmt: skip

    second = exchange.spawn_router("review-2", log)
    try:
        released = await _audit_for(exchange, f"review:{hold_id}:nca")
        refused = await _audit_for(exchange, f"review:{hold_id}:met-police")
        [(nca_outcome, nca_rule)] = [(o.outcome, o.rule) for o in released[0].outcomes]
        [(police_outcome, police_rule)] = [(o.outcome, o.rule) for o in refused[0].outcomes]
        assert (nca_outcome, nca_rule) == ("delivered", "review:release")
        assert (police_outcome, police_rule) == ("withheld", "review:refuse")
        assert REVIEWER in (released[0].outcomes[0].reason or "")

        # A second decision on the released hold, signed by the reviewer: refused by the router.
        [held] = [r for r in await exchange.read(exchange.settings.held_topic, expected=3)
                  if read_held_or_none(r.value) is not None]  # fmt: skip
        key_dir = exchange.settings.key_dir_path
        again = write_decision(
            held_value=held.value,
            held=read_held(held.value),
            partner="nca",
            verdict=Verdict.REFUSE,
            reason="changed my mind",
            reviewer=load_signing_key(signing_key_file(key_dir, REVIEWER), REVIEWER),
            decided_at=datetime.now(UTC),
        )
        await exchange.publish(REVIEWER, [again], topic=exchange.settings.decisions_topic)
        repeated = await _audit_for(exchange, f"review:{hold_id}:nca", count=2)
        assert repeated[1].kind == "quarantine"

        nca = [d for d in await exchange.delivered("nca", wait=3.0) if d.event_id == event_id]
        police = [
            d for d in await exchange.delivered("met-police", wait=3.0) if d.event_id == event_id
        ]
        assert len(nca) == 1
        assert police == []
        assert nca[0].markings["siena_handling"] == "H3"

        # The Dutch liaison point was told: held (for both), released (nca), refused (police).
        told = {(n.status.value, n.partners) for n in await exchange.notices("ilo-nl")}
        assert told == {
            ("held", ("met-police", "nca")),
            ("released", ("nca",)),
            ("refused", ("met-police",)),
        }
    finally:
        kill(second)

    assert json.loads(await asyncio.to_thread(_msht, exchange, "held", "list", "-o", "json")) == []
    # `msht audit query --outcome held` names the decision that closed each hold.
    [closed] = await asyncio.to_thread(_held_in_audit, exchange)
    decided = {
        r["partner"]: (r["decision"], r["outcome"], r["reviewer"], r["reason"])
        for r in closed["review"]
    }
    assert decided == {
        "nca": ("release", "delivered", REVIEWER, "Europol agreed"),
        "met-police": ("refuse", "withheld", REVIEWER, "prosecution restriction applies"),
    }
    await asyncio.to_thread(_msht, exchange, "audit", "verify")


def _held_in_audit(ex: RouterExchange) -> list[dict[str, Any]]:
    """``msht audit query --outcome held --json``: each held record with its ``review``."""
    out = _msht(ex, "audit", "query", "--outcome", "held", "--json")
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def read_held_or_none(value: bytes) -> HeldRecord | None:
    """The held record in ``value``, or ``None`` for a closure."""
    try:
        return read_held(value)
    except ReviewError:
        return None
