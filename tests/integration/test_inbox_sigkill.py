"""Issue 18: the watched inbox (``msht publish --watch``) killed with SIGKILL mid-stream and
started again loses nothing and duplicates nothing downstream, on the real broker with a
running router: every document is filed with a receipt, every event is decided once and
delivered once (the re-published ones are audited as duplicates)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.intake.identity import derive_event_id
from adapters.intake.inbox import receipts
from adapters.registry import parser_for
from broker.events.envelope import decode_envelope
from broker.settings import Settings
from broker.types import AgencyId, PartnerId
from tests.integration.router_env import RouterExchange, router_exchange
from tests.unit.adapter_samples import sample

COUNT = 120
KILL_AFTER = 30


@pytest.fixture
async def exchange(settings: Settings, tmp_path: Path) -> AsyncIterator[RouterExchange]:
    async with router_exchange(settings, tmp_path / "state") as ex:
        yield ex


def _drop_referrals(inbox: Path) -> set[str]:
    """``COUNT`` distinct referrals dropped as a sender does (dotfile, then rename); returns
    their event ids."""
    template = json.loads(sample("police/nrm-referral.json"))
    adapter = parser_for("nrm-json")
    ids: set[str] = set()
    for i in range(COUNT):
        template["routing"]["external_id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"inbox-{i}"))
        template["identity"]["surname"] = f"Alpha{i:04d}"
        data = json.dumps(template).encode()
        document = adapter.parse(data, "nrm-json").accepted[0].document
        ids.add(derive_event_id(AgencyId("met-police"), adapter.to_canonical(document)))
        partial = inbox / f".referral-{i:04d}.json"
        partial.write_bytes(data)
        partial.rename(inbox / f"referral-{i:04d}.json")
    return ids


async def _start_watcher(ex: RouterExchange, root: Path) -> asyncio.subprocess.Process:
    args = ["--log-level", "INFO", "publish", "--agency", "met-police", "--watch", str(root)]
    code = f"import sys; from broker.cli import main; sys.exit(main({args!r}))"
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", code,
        env={**os.environ, **ex.env()},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


async def test_killed_inbox_watcher_restarted_files_everything_and_router_delivers_once(
    exchange: RouterExchange, tmp_path: Path
) -> None:
    ex = exchange
    root = tmp_path / "inbox-root"
    (root / "inbox").mkdir(parents=True)
    expected = _drop_referrals(root / "inbox")
    (root / "inbox" / ".still-writing.json").write_text("{")  # a sender's partial file
    ex.start_router("inbox-router")

    first = await _start_watcher(ex, root)
    assert first.stderr is not None
    published = 0
    async with asyncio.timeout(120):
        while published < KILL_AFTER:
            line = await first.stderr.readline()
            assert line, "watcher ended before it could be killed"
            published += b'"published"' in line or b" published " in line
    first.send_signal(signal.SIGKILL)
    assert await first.wait() == -signal.SIGKILL

    second = await _start_watcher(ex, root)
    assert second.stderr is not None
    drain = asyncio.create_task(_drain(second.stderr))
    async with asyncio.timeout(240):
        while len(list((root / "processed").glob("*.receipt.json"))) < COUNT:  # noqa: ASYNC110
            await asyncio.sleep(0.5)  # the file system gives no event to wait on
    second.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(second.wait(), 60) == 0
    await drain

    # Every document filed with a receipt naming its one event; the partial file untouched.
    assert sorted(p.name for p in (root / "inbox").iterdir()) == [".still-writing.json"]
    filed = receipts(root / "processed")
    assert len(filed) == COUNT
    assert {e["event_id"] for r in filed for e in r["published"]} == expected
    assert all(r["published"][0]["offset"] >= 0 for r in filed)

    # Downstream: one decision and at most one delivery per partner for every event. Every
    # input record gets one audit record (a re-published copy a duplicate's), so waiting for
    # as many as the ingress topic holds waits for all of them, and no longer.
    inputs = await ex.read(ex.settings.ingress_topic(AgencyId("met-police")), expected=COUNT)
    assert COUNT <= len(inputs) <= COUNT + KILL_AFTER
    records = await ex.wait_for_audit(len(inputs), wait=120)
    assert len(records) == len(inputs)
    decisions = Counter(r.event_id for r in records if r.kind == "decision")
    assert set(decisions) == expected
    assert set(decisions.values()) == {1}
    partners = {o.partner for r in records if r.kind == "decision" for o in r.outcomes
                if o.outcome == "delivered"}  # fmt: skip
    assert partners
    for partner in partners:
        topic = ex.settings.delivery_topic(PartnerId(partner))
        delivered = Counter(
            decode_envelope(r.value).header.event_id for r in await ex.read(topic, expected=1)
        )
        assert set(delivered.values()) == {1}, partner
