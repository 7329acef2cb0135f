"""Issue 18 part 2: the watched inbox files documents with receipts (no broker: a fake
producer), ``--dry-run`` sends nothing, and malformed or empty files say what is wrong."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest

from adapters.intake.inbox import PARTIAL_SUFFIXES, InboxWatcher, receipts, waiting
from adapters.intake.publisher import Publisher
from adapters.registry import detect_format
from broker.cli.publish import dry_run
from broker.errors import InputValidationError, TransportError
from broker.kafka.records import Outgoing, Written
from broker.settings import Settings
from broker.types import AgencyId
from tests.unit.adapter_fakes import FakeProducer, JsonSealer
from tests.unit.adapter_samples import EXAMPLES

SETTINGS_PREFIX = "in-test."


def _watcher(tmp_path: Path, producer: FakeProducer | None = None) -> InboxWatcher:
    settings = Settings(state_dir=tmp_path / "state", ingress_prefix=SETTINGS_PREFIX)
    publisher = Publisher(settings, JsonSealer(AgencyId("met-police")), producer or FakeProducer())
    return InboxWatcher(tmp_path / "box", publisher)


def _drop(watcher: InboxWatcher, name: str, data: bytes) -> Path:
    path = watcher.root / "inbox" / name
    path.write_bytes(data)
    return path


async def test_published_document_moves_to_processed_beside_its_receipt(tmp_path: Path) -> None:
    watcher = _watcher(tmp_path)
    _drop(watcher, "r.json", (EXAMPLES / "police/nrm-referral.json").read_bytes())
    await watcher.sweep()
    assert sorted(p.name for p in (watcher.root / "processed").iterdir()) == [
        "r.json",
        "r.json.receipt.json",
    ]
    [receipt] = receipts(watcher.root / "processed")
    [event] = receipt["published"]
    assert event["topic"] == "in-test.met-police"
    assert (event["partition"], event["offset"]) == (0, 0)
    assert event["event_id"]
    assert receipt["rejected"] == []


async def test_document_with_nothing_to_publish_goes_to_rejected_naming_each_field(
    tmp_path: Path,
) -> None:
    watcher = _watcher(tmp_path)
    _drop(watcher, "bad.json", (EXAMPLES / "police/nrm-referral.bad.json").read_bytes())
    await watcher.sweep()
    assert (watcher.root / "rejected" / "bad.json").is_file()
    [receipt] = receipts(watcher.root / "rejected")
    assert receipt["published"] == []
    problems = [p for r in receipt["rejected"] for p in r["problems"]]
    assert len(problems) >= 2
    assert all(p["field"] and p["reason"] for p in problems)


async def test_csv_with_some_bad_rows_is_processed_and_its_receipt_lists_both(
    tmp_path: Path,
) -> None:
    watcher = _watcher(tmp_path)
    _drop(watcher, "rows.csv", (EXAMPLES / "police/referrals-with-bad-rows.csv").read_bytes())
    await watcher.sweep()
    [receipt] = receipts(watcher.root / "processed")
    assert [e["row"] for e in receipt["published"]] == [2, 4]
    assert [r["row"] for r in receipt["rejected"]] == [3, 5]


@pytest.mark.parametrize("name", [".hidden.json", *(f"r.json{s}" for s in PARTIAL_SUFFIXES)])
def test_dotfiles_and_partial_names_are_not_taken(tmp_path: Path, name: str) -> None:
    watcher = _watcher(tmp_path)
    _drop(watcher, name, b"{}")
    assert waiting(watcher.root / "inbox") == []


class _DownProducer(FakeProducer):
    async def send(self, record: Outgoing) -> asyncio.Future[Written]:
        raise TransportError("no broker answered")


async def test_document_stays_in_the_inbox_when_the_broker_does_not_answer(
    tmp_path: Path,
) -> None:
    watcher = _watcher(tmp_path, _DownProducer())
    path = _drop(watcher, "r.json", (EXAMPLES / "police/nrm-referral.json").read_bytes())
    assert await watcher.sweep() is False
    assert path.is_file()
    assert list((watcher.root / "processed").iterdir()) == []


async def test_a_document_taken_again_after_a_crash_gets_the_same_event_id(
    tmp_path: Path,
) -> None:
    watcher = _watcher(tmp_path)
    data = (EXAMPLES / "police/case-charge.json").read_bytes()
    first = await watcher.take(_drop(watcher, "c.json", data))
    second = await watcher.take(_drop(watcher, "c.json", data))  # as if the move was lost
    assert first["published"][0]["event_id"] == second["published"][0]["event_id"]


async def test_run_stops_when_told(tmp_path: Path) -> None:
    watcher = _watcher(tmp_path)
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    _drop(watcher, "r.json", (EXAMPLES / "police/nrm-referral.json").read_bytes())
    async with asyncio.timeout(10):
        while not (watcher.root / "processed" / "r.json").exists():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 5)


def test_dry_run_prints_what_would_be_published_and_rejected(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, ingress_prefix=SETTINGS_PREFIX)
    out = io.StringIO()
    files = [EXAMPLES / "police/referrals-with-bad-rows.csv"]
    code = dry_run(settings, JsonSealer(AgencyId("met-police")), files, "auto", out)
    lines = out.getvalue().splitlines()
    assert code == 1
    assert sum(line.startswith("would publish") for line in lines) == 2
    assert sum(line.startswith("would reject") for line in lines) == 2
    assert all("in-test.met-police" in line for line in lines if "would publish" in line)


# --- what a malformed or empty file says --------------------------------------------------


def _problems(name: str, data: bytes) -> str:
    with pytest.raises(InputValidationError) as caught:
        detect_format(name, data)
    return "; ".join(str(p) for p in caught.value.problems)


@pytest.mark.parametrize("data", [b"", b"   \n", b"\xef\xbb\xbf"])
def test_empty_file_says_it_is_empty(data: bytes) -> None:
    assert "is empty" in _problems("r.json", data)


def test_broken_json_says_where() -> None:
    assert "is not JSON: Expecting value at line 2 column 8" in _problems(
        "r.json", b'{"a": 1,\n  "b": }'
    )


@pytest.mark.parametrize(
    ("data", "kind"),
    [(b"[1]", "an array"), (b'"x"', "a string"), (b"3", "a number"), (b"null", "null")],
)
def test_json_that_is_not_an_object_says_what_it_is(data: bytes, kind: str) -> None:
    assert f"is JSON but {kind}, not an object" in _problems("r.json", data)


def test_json_object_of_no_format_names_the_closest_and_its_problems() -> None:
    document = json.loads((EXAMPLES / "police/nrm-referral.json").read_bytes())
    del document["routing"]
    said = _problems("r.json", json.dumps(document).encode())
    assert "closest to nrm-json" in said
    assert "routing" in said
