"""The publisher: valid documents are signed and produced, bad ones kept with their reasons."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapters.intake.publisher import Publisher, publisher_producer
from broker.kafka import aio
from broker.settings import Settings
from broker.types import AgencyId
from tests.unit.adapter_fakes import FakeProducer, JsonSealer
from tests.unit.adapter_samples import EXAMPLES, sample


def _publisher(tmp_path: Path, *, to_topic: bool = False) -> tuple[Publisher, FakeProducer]:
    settings = Settings(state_dir=tmp_path, ingress_prefix="in-test.")
    producer = FakeProducer()
    sealer = JsonSealer(AgencyId("met-police"))
    return Publisher(settings, sealer, producer, rejected_to_topic=to_topic), producer


async def test_valid_referral_goes_to_the_agency_ingress_topic_keyed_by_subject(
    tmp_path: Path,
) -> None:
    publisher, producer = _publisher(tmp_path)
    await publisher.publish_file(EXAMPLES / "police/nrm-referral.json")
    [sent] = producer.sent
    assert sent["topic"] == "in-test.met-police"
    assert sent["key"] == b"6f1c2a9e-0b7d-4c55-9a3e-1d2f3a4b5c01"
    assert json.loads(sent["value"])["event_type"] == "referral.nrm"
    assert dict(sent["headers"])["ce_type"] == b"referral.nrm"
    assert publisher.report.rejected == []


async def test_publishing_the_same_file_twice_gives_the_same_event_id(tmp_path: Path) -> None:
    publisher, _ = _publisher(tmp_path)
    for _ in range(2):
        await publisher.publish_file(EXAMPLES / "police/case-charge.json")
    first, second = publisher.report.published
    assert first.event_id == second.event_id


async def test_csv_with_bad_rows_publishes_good_rows_and_reports_bad_ones(tmp_path: Path) -> None:
    publisher, producer = _publisher(tmp_path)
    await publisher.publish_file(EXAMPLES / "police/referrals-with-bad-rows.csv")
    assert [p.row for p in publisher.report.published] == [2, 4]
    assert len(producer.sent) == 2
    assert [r.row for r in publisher.report.rejected] == [3, 5]


async def test_rejected_input_is_kept_raw_with_a_reason_file(tmp_path: Path) -> None:
    publisher, producer = _publisher(tmp_path)
    await publisher.publish_file(EXAMPLES / "police/dtn-identifying.bad.json")
    assert producer.sent == []
    [reason_path] = publisher.report.kept
    assert reason_path.parent == tmp_path / "rejected" / "met-police"
    reason = json.loads(reason_path.read_text())
    [rejection] = reason["rejections"]
    assert "identity.forename" in {p["location"] for p in rejection["problems"]}
    raw = reason_path.with_name(reason_path.name.removesuffix(".reason.json"))
    assert raw.read_bytes() == sample("police/dtn-identifying.bad.json")
    assert raw.stat().st_mode & 0o077 == 0


async def test_rejections_can_also_go_to_the_rejected_topic(tmp_path: Path) -> None:
    publisher, producer = _publisher(tmp_path, to_topic=True)
    await publisher.publish_file(EXAMPLES / "cps/billion-laughs.attack.xml")
    [sent] = producer.sent
    assert sent["topic"] == "msht.rejected"
    record = json.loads(sent["value"])
    assert record["rejections"][0]["row"] is None
    assert record["raw_base64"]


async def test_unrecognised_file_is_rejected_not_raised(tmp_path: Path) -> None:
    publisher, producer = _publisher(tmp_path)
    await publisher.publish_bytes("notes.txt", b"hello")
    assert producer.sent == []
    assert "--format" in publisher.report.rejected[0].describe()


def test_the_publishers_producer_batches_dozens_of_sealed_referrals_per_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A referral sealed to the router with its proof is ~7.5 KB: aiokafka's 16 KB default
    # sent two per acks=all request (issue 19). The batch must stay under the broker's
    # default message.max.bytes (1,048,588).
    asked: dict[str, Any] = {}

    def producer(settings: Settings, **overrides: Any) -> object:
        asked.update(overrides)
        return object()

    monkeypatch.setattr(aio, "producer", producer)
    publisher_producer(Settings())
    assert 30 * 7_500 <= asked["max_batch_size"] < 1_048_588
