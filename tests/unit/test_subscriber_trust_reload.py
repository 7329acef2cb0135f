"""A subscriber takes a changed trust store between batches, and refuses one that does not
load (the opener in force stays, the refusal is reported)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from adapters.protocol import DeliveredEvent
from adapters.rendering.subscriber import Subscriber, TrustReload
from broker.errors import BadSignatureError, TrustStoreSignatureError
from broker.settings import Settings
from broker.types import AgencyId, EventId, PartnerId
from tests.unit.adapter_fakes import FakeConsumer, JsonOpener, JsonSealer
from tests.unit.adapter_roundtrip import canonical


class RefusingOpener:
    """Trusts no key (the store in force before the signer's key was added)."""

    def open(self, data: bytes) -> DeliveredEvent:
        raise BadSignatureError("key k-2 is not in the trust store")


def _refused() -> JsonOpener:
    raise TrustStoreSignatureError("trust.yaml: not signed by the operator key")


def _trust(tmp_path: Path) -> Path:
    path = tmp_path / "trust.yaml"
    path.write_text("agencies: {}\n")
    return path


def test_an_unchanged_trust_store_is_not_reopened(tmp_path: Path) -> None:
    reload = TrustReload(_trust(tmp_path), JsonOpener)
    assert reload.poll() is None


def test_a_changed_trust_store_is_reopened(tmp_path: Path) -> None:
    path = _trust(tmp_path)
    reload = TrustReload(path, JsonOpener)
    path.write_text("agencies: {wyp: {}}\n")
    assert isinstance(reload.poll(), JsonOpener)
    assert reload.poll() is None


def test_a_wake_reopens_an_unchanged_trust_store(tmp_path: Path) -> None:
    wake = asyncio.Event()
    reload = TrustReload(_trust(tmp_path), JsonOpener, wake)
    wake.set()
    assert isinstance(reload.poll(), JsonOpener)
    assert not wake.is_set()


def test_a_trust_store_that_does_not_load_is_refused_once_with_its_reason(tmp_path: Path) -> None:
    path = _trust(tmp_path)
    reload = TrustReload(path, _refused)
    path.write_text("changed\n")
    refusal = reload.poll()
    assert isinstance(refusal, str)
    assert "TrustStoreSignatureError" in refusal
    assert reload.poll() is None


def _value() -> bytes:
    event = canonical("police/case-charge.json", "case-json")
    return JsonSealer(AgencyId("met-police")).seal(event, EventId("ev-1"))


async def _subscriber(tmp_path: Path, opener: object, reload: TrustReload) -> Subscriber:
    settings = Settings(state_dir=tmp_path, delivery_prefix="out-test.")
    sub = Subscriber(
        settings, PartnerId("cps"), opener, FakeConsumer("out-test.cps", [_value()]),  # type: ignore[arg-type]
        family="cps", outbox=tmp_path, reload=reload,
    )  # fmt: skip
    await sub.run(max_events=1)
    return sub


async def test_the_next_batch_is_opened_with_the_reloaded_trust_store(tmp_path: Path) -> None:
    path = _trust(tmp_path)
    reload = TrustReload(path, JsonOpener)
    path.write_text("agencies: {met-police: {}}\n")
    sub = await _subscriber(tmp_path, RefusingOpener(), reload)
    assert sub.report.reloads == 1
    assert [r.event_id for r in sub.report.rendered] == ["ev-1"]


async def test_a_refused_trust_store_leaves_the_one_in_force(tmp_path: Path) -> None:
    path = _trust(tmp_path)
    reload = TrustReload(path, _refused)
    path.write_text("tampered\n")
    sub = await _subscriber(tmp_path, JsonOpener(), reload)
    assert sub.report.reloads == 0
    assert len(sub.report.reload_refusals) == 1
    assert [r.event_id for r in sub.report.rendered] == ["ev-1"]
