"""A publisher killed with SIGKILL mid-folder and restarted loses nothing and keeps event ids."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from broker.events.envelope import decode_envelope
from broker.kafka import clients as kafka
from broker.settings import Settings
from broker.types import AgencyId
from tests.integration.adapter_env import Exchange, make_exchange, read_all
from tests.unit.adapter_samples import sample

COUNT = 1000
KILL_AFTER = 100


@pytest.fixture
async def exchange(settings: Settings, tmp_path: Path) -> AsyncIterator[Exchange]:
    """This test's own keys, trust store and uuid-named topics (deleted afterwards)."""
    ex = await make_exchange(settings, tmp_path / "state")
    yield ex
    await kafka.delete_topics(ex.settings, ex.topics())


def _write_referrals(folder: Path) -> set[str]:
    """``COUNT`` distinct referrals, one file each; returns their external ids."""
    folder.mkdir()
    template = json.loads(sample("police/nrm-referral.json"))
    ids: set[str] = set()
    for i in range(COUNT):
        ref = str(uuid.uuid5(uuid.NAMESPACE_URL, f"msht-test-referral-{i}"))
        template["routing"]["external_id"] = ref
        template["identity"]["surname"] = f"Alpha{i:04d}"
        (folder / f"referral-{i:04d}.json").write_text(json.dumps(template))
        ids.add(ref)
    return ids


async def _start_publisher(exchange: Exchange, folder: Path) -> asyncio.subprocess.Process:
    args = ["--log-level", "INFO", "publish", "--agency", "met-police", str(folder)]
    code = f"import sys; from broker.cli import main; sys.exit(main({args!r}))"
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", code,
        env={**os.environ, **exchange.env()},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def test_killed_publisher_restarted_leaves_every_referral_once_or_more_with_one_id(
    exchange: Exchange, tmp_path: Path
) -> None:
    folder = tmp_path / "referrals"
    expected_ids = _write_referrals(folder)

    first = await _start_publisher(exchange, folder)
    assert first.stderr is not None
    acknowledged = 0
    async with asyncio.timeout(120):
        while acknowledged < KILL_AFTER:
            line = await first.stderr.readline()
            assert line, "publisher ended before it could be killed"
            acknowledged += b'"published"' in line or b" published " in line
    first.send_signal(signal.SIGKILL)
    assert await first.wait() == -signal.SIGKILL

    second = await _start_publisher(exchange, folder)
    async with asyncio.timeout(240):
        _, err = await second.communicate()
    assert second.returncode == 0, err.decode()[-2000:]

    topic = exchange.settings.ingress_topic(AgencyId("met-police"))
    records = await read_all(exchange.settings, topic, expected=COUNT + KILL_AFTER, wait_seconds=90)
    ids_by_subject: dict[str, set[str]] = defaultdict(set)
    for record in records:
        header = decode_envelope(record.value).header
        ids_by_subject[header.subject].add(header.event_id)
    assert set(ids_by_subject) == expected_ids
    assert len(records) >= COUNT + KILL_AFTER  # the first run's events were published again
    assert all(len(ids) == 1 for ids in ids_by_subject.values())
