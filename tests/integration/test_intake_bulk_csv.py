"""Issue 18 part 2 on the real broker: a generated 13,000-row referral export of about 6 MB
(over the 5 MB document limit) publishes through ``msht publish``, every row signed, one
event each."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.native.documents import MAX_DOCUMENT_BYTES
from broker.cli import main
from broker.events.envelope import decode_envelope
from broker.kafka import clients as kafka
from broker.settings import Settings
from broker.types import AgencyId
from tests.integration.adapter_env import Exchange, make_exchange, read_all
from tests.unit.test_intake_csv_stream import ROWS, _export


@pytest.fixture
async def exchange(settings: Settings, tmp_path: Path) -> AsyncIterator[Exchange]:
    ex = await make_exchange(settings, tmp_path / "state")
    yield ex
    await kafka.delete_topics(ex.settings, ex.topics())


async def test_a_13000_row_6_mb_export_publishes_every_row(
    exchange: Exchange, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _export(tmp_path / "export.csv", ROWS)
    assert path.stat().st_size > MAX_DOCUMENT_BYTES
    for key, value in exchange.env().items():
        monkeypatch.setenv(key, value)
    code = await asyncio.to_thread(main, ["publish", "--agency", "met-police", str(path)])
    assert code == 0
    topic = exchange.settings.ingress_topic(AgencyId("met-police"))
    records = await read_all(exchange.settings, topic, expected=ROWS, wait_seconds=120)
    subjects = {decode_envelope(r.value).header.subject for r in records}
    assert len(records) == ROWS
    assert len(subjects) == ROWS
