"""Adapters on the real broker: publish through the CLI, deliver, verify, render natively."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.cps.parse import parse_case_xml
from adapters.intake.identity import derive_event_id
from adapters.intake.publisher import Publisher
from adapters.overseas.parse import parse_alert_json, parse_alert_xml
from adapters.registry import parser_for
from adapters.rendering.subscriber import Subscriber
from broker.cli import main
from broker.crypto.signing import verify_bytes
from broker.crypto.trust import load_trust_store
from broker.events.envelope import decode_payload
from broker.kafka import clients as kafka
from broker.settings import Settings
from broker.types import AgencyId, PartnerId
from tests.integration.adapter_env import Exchange, make_exchange, read_all
from tests.unit.adapter_samples import EXAMPLES, sample


@pytest.fixture
async def exchange(settings: Settings, tmp_path: Path) -> AsyncIterator[Exchange]:
    """This test's own keys, trust store and uuid-named topics (deleted afterwards)."""
    ex = await make_exchange(settings, tmp_path)
    yield ex
    await kafka.delete_topics(ex.settings, ex.topics())


async def _deliver(ex: Exchange, partner: str, values: list[bytes]) -> None:
    """Put events on a partner's delivery topic, as the router would."""
    async with kafka.producer(ex.settings) as producer:
        for value in values:
            await producer.send_and_wait(ex.settings.delivery_topic(PartnerId(partner)), value)


def _sealed(ex: Exchange, agency: str, name: str, fmt: str) -> bytes:
    adapter = parser_for(fmt)
    event = adapter.to_canonical(adapter.parse(sample(name), fmt).accepted[0].document)
    sealer = ex.sealers[agency]
    return sealer.seal(event, derive_event_id(sealer.agency, event))


async def test_referral_published_through_the_cli_arrives_signed_and_verifies(
    exchange: Exchange, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in exchange.env().items():
        monkeypatch.setenv(key, value)
    sample_path = str(EXAMPLES / "police/nrm-referral.json")
    # The CLI runs its own event loop (asyncio.run), so it gets a thread of its own.
    code = await asyncio.to_thread(main, ["publish", "--agency", "met-police", sample_path])
    assert code == 0
    topic = exchange.settings.ingress_topic(AgencyId("met-police"))
    [record] = await read_all(exchange.settings, topic, expected=1)
    envelope, result = verify_bytes(
        record.value, load_trust_store(exchange.settings.trust_store_path)
    )
    assert result.checks[0].signer == "met-police"
    assert envelope.header.event_type == "referral.nrm"
    assert record.key == b"6f1c2a9e-0b7d-4c55-9a3e-1d2f3a4b5c01"
    assert decode_payload(envelope)["victim"]["surname"] == "Alpha"


async def test_cli_publishes_good_csv_rows_and_keeps_the_bad_ones(
    exchange: Exchange, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in exchange.env().items():
        monkeypatch.setenv(key, value)
    csv_path = EXAMPLES / "police/referrals-with-bad-rows.csv"
    code = await asyncio.to_thread(main, ["publish", "--agency", "met-police", str(csv_path)])
    assert code == 1
    topic = exchange.settings.ingress_topic(AgencyId("met-police"))
    records = await read_all(exchange.settings, topic, expected=2)
    assert len(records) == 2
    kept = list((exchange.settings.state_dir / "rejected" / "met-police").glob("*.reason.json"))
    assert len(kept) == 1


async def test_subscriber_renders_cps_xml_from_a_delivered_case_update(exchange: Exchange) -> None:
    await _deliver(
        exchange, "cps", [_sealed(exchange, "met-police", "police/case-charge.json", "case-json")]
    )
    outbox = exchange.settings.state_dir / "outbox"
    async with Subscriber.open(
        exchange.settings, PartnerId("cps"), exchange.opener(), family="cps", outbox=outbox
    ) as sub:
        await sub.run(max_events=1)
    [rendered] = sub.report.rendered
    assert rendered.fmt == "cps-xml"
    assert rendered.path is not None
    doc = parse_case_xml(rendered.path.read_bytes())
    assert (
        doc
        == parser_for("case-json")
        .parse(sample("police/case-charge.json"), "case-json")
        .accepted[0]
        .document
    )


@pytest.mark.parametrize("fmt", ["alert-xml", "alert-json"])
async def test_subscriber_renders_overseas_alerts_as_umf_xml_and_diffusion_json(
    exchange: Exchange, fmt: str
) -> None:
    value = _sealed(exchange, "met-police", "overseas/diffusion-outbound.json", "alert-json")
    await _deliver(exchange, "ilo-nl", [value])
    async with Subscriber.open(
        exchange.settings, PartnerId("ilo-nl"), exchange.opener(), fmt=fmt, family="overseas",
        outbox=exchange.settings.state_dir / "outbox",
    ) as sub:  # fmt: skip
        await sub.run(max_events=1)
    [rendered] = sub.report.rendered
    parse = parse_alert_xml if fmt == "alert-xml" else parse_alert_json
    assert parse(rendered.data) == parse_alert_json(sample("overseas/diffusion-outbound.json"))


@pytest.mark.parametrize(
    ("agency", "name", "fmt", "partner"),
    [
        ("cps", "cps/charging-decision.xml", "cps-xml", "met-police"),
        ("ilo-nl", "overseas/alert-inbound.xml", "alert-xml", "met-police"),
    ],
)
async def test_decision_and_alert_go_in_and_come_out_verified_with_markings_intact(
    exchange: Exchange, agency: str, name: str, fmt: str, partner: str
) -> None:
    settings = exchange.settings
    async with Publisher.open(settings, exchange.sealers[agency]) as publisher:
        await publisher.publish_file(EXAMPLES / name, fmt)
    [published] = publisher.report.published
    [record] = await read_all(settings, settings.ingress_topic(AgencyId(agency)), expected=1)
    # The router is not under test here: pass the ingress record through unchanged.
    await _deliver(exchange, partner, [record.value])
    async with Subscriber.open(
        settings, PartnerId(partner), exchange.opener(), fmt=fmt, stdout=None,
        outbox=settings.state_dir / "outbox",
    ) as sub:  # fmt: skip
        await sub.run(max_events=1)
    [rendered] = sub.report.rendered
    assert rendered.event_id == published.event_id
    adapter = parser_for(fmt)
    original = adapter.parse(sample(name), fmt).accepted[0].document
    assert adapter.parse(rendered.data, fmt).accepted[0].document == original
    opened = exchange.opener().open(record.value)
    expected = adapter.to_canonical(original).markings
    assert opened.markings == expected
