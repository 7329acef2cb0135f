"""The subscriber: verified deliveries are rendered natively; bad ones reported, loop goes on."""

from __future__ import annotations

import io
import json
from pathlib import Path

from adapters.cps.parse import parse_case_xml
from adapters.intake.identity import canonical_json
from adapters.overseas.parse import parse_alert_json
from adapters.rendering.subscriber import Subscriber
from broker.settings import Settings
from broker.types import PartnerId
from tests.unit.adapter_fakes import FakeConsumer, JsonOpener, JsonSealer
from tests.unit.adapter_roundtrip import canonical


def _sealed(name: str, fmt: str, event_id: str) -> bytes:
    from broker.types import AgencyId, EventId

    return JsonSealer(AgencyId("met-police")).seal(canonical(name, fmt), EventId(event_id))


async def _run(
    tmp_path: Path,
    values: list[bytes],
    partner: str = "cps",
    fmt: str | None = None,
    family: str = "cps",
) -> tuple[Subscriber, FakeConsumer, io.StringIO]:
    settings = Settings(state_dir=tmp_path, delivery_prefix="out-test.")
    consumer = FakeConsumer("out-test.cps", values)
    out = io.StringIO()
    sub = Subscriber(
        settings,
        PartnerId(partner),
        JsonOpener(),
        consumer,
        fmt=fmt,
        family=family,
        outbox=tmp_path,
        stdout=out,
    )
    await sub.run(max_events=len(values))
    return sub, consumer, out


async def test_case_update_is_rendered_as_cps_xml_in_the_outbox(tmp_path: Path) -> None:
    value = _sealed("police/case-charge.json", "case-json", "ev-1")
    _, consumer, _ = await _run(tmp_path, [value])
    path = tmp_path / "cps" / "ev-1.xml"
    assert parse_case_xml(path.read_bytes()).urn == "01MP1234526"
    assert consumer.committed == [1]


async def test_alert_is_rendered_in_the_chosen_format_on_stdout(tmp_path: Path) -> None:
    value = _sealed("overseas/alert-inbound.xml", "alert-xml", "ev-2")
    _, _, out = await _run(tmp_path, [value], partner="ilo-nl", fmt="alert-json", family="overseas")
    alert = parse_alert_json(out.getvalue().encode())
    assert alert.handling.siena_handling == "H3"


async def test_a_forged_event_is_reported_and_the_next_one_still_rendered(tmp_path: Path) -> None:
    good = _sealed("cps/charging-decision.xml", "cps-xml", "ev-3")
    sub, consumer, _ = await _run(tmp_path, [b"forged bytes", b"{not json", good])
    assert [f.offset for f in sub.report.failed] == [0, 1]
    assert "BadSignatureError" in sub.report.failed[0].reason
    assert [r.event_id for r in sub.report.rendered] == ["ev-3"]
    assert consumer.committed == [1, 2, 3]
    failure = json.loads((tmp_path / "cps" / "_failed" / "out-test.cps-0-0.json").read_text())
    assert failure["offset"] == 0


async def test_an_event_no_adapter_renders_is_reported(tmp_path: Path) -> None:
    doc = json.loads(_sealed("police/case-charge.json", "case-json", "ev-4"))
    doc["event_type"] = "case.unheard_of"
    sub, _, _ = await _run(tmp_path, [canonical_json(doc)])
    assert "no adapter renders case.unheard_of" in sub.report.failed[0].reason


async def test_the_same_event_delivered_twice_leaves_one_file(tmp_path: Path) -> None:
    value = _sealed("police/case-arrest.json", "case-json", "ev-5")
    await _run(tmp_path, [value, value])
    assert sorted(p.name for p in (tmp_path / "cps").iterdir()) == ["ev-5.xml"]


async def test_a_different_document_under_a_delivered_id_never_replaces_the_first(
    tmp_path: Path,
) -> None:
    first = _sealed("police/case-arrest.json", "case-json", "ev-6")
    other = _sealed("police/case-charge.json", "case-json", "ev-6")
    sub, _, _ = await _run(tmp_path, [first, other])
    outbox = tmp_path / "cps"
    kept = (outbox / "ev-6.xml").read_bytes()
    assert kept == sub.report.rendered[0].data
    assert [f.offset for f in sub.report.failed] == [1]
    assert "already in the outbox" in sub.report.failed[0].reason
    assert [p.name for p in (outbox / "_conflicts").iterdir()] == ["out-test.cps-0-1.xml"]


async def test_a_police_partner_receives_case_updates_as_case_json(tmp_path: Path) -> None:
    value = _sealed("cps/charging-decision.xml", "cps-xml", "ev-6")
    sub, _, _ = await _run(tmp_path, [value], partner="met-police", family="police")
    assert sub.report.rendered[0].fmt == "case-json"
