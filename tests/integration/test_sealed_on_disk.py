"""Victim identity never lies in clear on Kafka: not on the wire, not in the broker's files.

Referrals go in through ``msht publish`` (tagged fields sealed to the router), the router
re-seals each recipient's view to that recipient's key, and the NCA's subscriber renders
them. The raw records of the ingress and delivery topics, and the broker's own log segment
files on disk, are then searched for every victim name, date of birth and contact detail.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.registry import parser_for
from adapters.rendering.subscriber import Subscriber
from broker.cli import main
from broker.settings import Settings
from broker.types import AgencyId, PartnerId
from tests.integration.router_env import RouterExchange, router_exchange
from tests.unit.adapter_samples import EXAMPLES, sample

SAMPLES = (("police/nrm-referral.json", "nrm-json"), ("police/referrals.csv", "nrm-csv"))


def _kafka_data_dir() -> Path:
    state = os.environ.get("MSHT_KAFKA_STATE_DIR") or os.environ.get("MSHT_KAFKA_HOME")
    base = Path(state) if state else Path.home() / ".local/state/msht-broker/kafka"
    return base / "data"


def _secrets() -> set[bytes]:
    """Every victim surname, date of birth and contact detail in the published samples."""
    found: set[str] = set()
    for name, fmt in SAMPLES:
        adapter = parser_for(fmt)
        for accepted in adapter.parse(sample(name), fmt).accepted:
            victim: dict[str, Any] = adapter.to_canonical(accepted.document).payload["victim"]
            found.update(v for v in (victim["surname"], victim["date_of_birth"]) if v)
            found.update(c["value"] for c in victim["contact_details"])
    return {s.encode("utf-8") for s in found}


@pytest.fixture(scope="module")
async def routed(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RouterExchange]:
    """Samples published through the CLI and routed; the router stopped again."""
    async with router_exchange(settings, tmp_path_factory.mktemp("disk")) as ex:
        env = ex.env()
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            paths = [str(EXAMPLES / name) for name, _ in SAMPLES]
            code = await asyncio.to_thread(main, ["publish", "--agency", "met-police", *paths])
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        assert code == 0
        ex.start_router()
        published = len(await ex.read(ex.settings.ingress_topic(AgencyId("met-police"))))
        await ex.wait_for_audit(published)
        await ex.stop_router()
        yield ex


def test_the_samples_carry_identity_to_look_for() -> None:
    assert len(_secrets()) >= 5


async def test_ingress_records_hold_no_victim_identity_in_clear(routed: RouterExchange) -> None:
    records = await routed.read(routed.settings.ingress_topic(AgencyId("met-police")))
    assert records
    for record in records:
        assert not [s for s in _secrets() if s in record.value]


async def test_delivery_records_hold_no_victim_identity_in_clear(routed: RouterExchange) -> None:
    records = await routed.read(routed.settings.delivery_topic(PartnerId("nca")))
    assert records
    for record in records:
        assert not [s for s in _secrets() if s in record.value]


async def test_broker_log_segments_on_disk_hold_no_victim_identity(routed: RouterExchange) -> None:
    s = routed.settings
    topics = [s.ingress_topic(AgencyId("met-police")), s.delivery_topic(PartnerId("nca"))]
    segments = [
        path
        for topic in topics
        for path in _kafka_data_dir().glob(f"{topic}-*/*.log")
        if path.stat().st_size > 0
    ]
    assert len(segments) >= len(topics), f"no log segments found under {_kafka_data_dir()}"
    for path in segments:
        data = path.read_bytes()
        assert not [secret for secret in _secrets() if secret in data], path.name


async def test_intended_recipient_renders_the_identity(
    routed: RouterExchange, tmp_path: Path
) -> None:
    partner = PartnerId("nca")
    expected = len(await routed.delivered(partner))
    async with Subscriber.open(
        routed.settings, partner, routed.opener(partner), outbox=tmp_path, group_id=None
    ) as subscriber:
        await asyncio.wait_for(subscriber.run(max_events=expected), 60)
    rendered = b"".join(p.read_bytes() for p in (tmp_path / partner).iterdir())
    assert subscriber.report.failed == []
    assert _secrets() <= {s for s in _secrets() if s in rendered}
