"""The schema catalogue is the one source of versions, fields and event types for every consumer.

A schema directory with ``Referral`` versions up to v10 is the case that exposed the old
second loader: sorting file names as text puts ``v10`` before ``v2`` and ``v9`` last.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from broker.crypto.sealed_fields import record_protected_paths
from broker.events import schemas
from broker.events.envelope import build_envelope
from broker.events.schemas import EVENT_TYPES, registry
from broker.policy.explain import EventInput, explain
from broker.policy.model import View
from broker.policy.views import plan_view
from tests.unit.event_samples import markings, referral
from tests.unit.policy_support import header, partner, policy_doc
from tests.unit.policy_support import load as load_policy_doc

REPO = Path(__file__).resolve().parents[2]
LATEST = 10
NEW_FIELD = f"nickname_v{LATEST}"


def _add_versions(directory: Path) -> None:
    """Referral v3..v10, each adding one optional field; v10's is an identity field."""
    doc = json.loads((directory / "Referral.v2.avsc").read_text())
    for version in range(3, LATEST + 1):
        name = NEW_FIELD if version == LATEST else f"extra_v{version}"
        added = {"name": name, "type": ["null", "string"], "default": None}
        if version == LATEST:
            added["msht.sensitivity"] = "identity"
        doc = {**doc, "fields": [*doc["fields"], added]}
        (directory / f"Referral.v{version}.avsc").write_text(json.dumps(doc))


def _clear_caches() -> None:
    registry.cache_clear()
    record_protected_paths.cache_clear()


@pytest.fixture
def ten_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    directory = tmp_path / "schemas"
    shutil.copytree(REPO / "schemas", directory)
    _add_versions(directory)
    monkeypatch.setattr(schemas, "default_schema_dir", lambda: directory)
    _clear_caches()
    yield directory
    _clear_caches()


@pytest.mark.usefixtures("ten_versions")
def test_current_version_is_the_highest_number_not_the_last_file_name() -> None:
    assert registry().current("Referral").version == LATEST
    assert [v.version for v in registry().versions("Referral")] == list(range(1, LATEST + 1))


@pytest.mark.usefixtures("ten_versions")
def test_policy_fields_come_from_the_current_version() -> None:
    paths = {f.path: f.tags for f in registry().fields("Referral")}
    assert paths[NEW_FIELD] == frozenset({"identity"})
    assert f"extra_v{LATEST - 1}" in paths


@pytest.mark.usefixtures("ten_versions")
def test_codec_writes_with_the_same_current_version() -> None:
    envelope = build_envelope(
        event_type="referral.nrm",
        source="met-police",
        subject="case-1",
        markings=markings(),
        payload=_minimal_referral(),
        occurred_at=datetime(2026, 11, 30, tzinfo=UTC),
    )
    assert envelope.header.payload_schema == registry().current("Referral").fingerprint


@pytest.mark.usefixtures("ten_versions")
def test_sealing_paths_follow_the_current_version() -> None:
    assert NEW_FIELD in record_protected_paths("Referral")
    assert NEW_FIELD in record_protected_paths("org.msht.events.Referral")


@pytest.mark.usefixtures("ten_versions")
def test_views_plan_over_the_current_version() -> None:
    plan = plan_view(View(seal_tags=["identity"]), registry().fields("Referral"))
    assert NEW_FIELD in plan.sealed


@pytest.mark.usefixtures("ten_versions")
def test_explain_reads_fields_through_the_catalogue() -> None:
    loaded = load_policy_doc(
        policy_doc(
            [partner("met")],
            [{"id": "r", "deliver": {"to": ["met"], "view": "no-identity"}}],
            views={"no-identity": {"remove_tags": ["identity"]}},
        )
    )
    payload = {**_minimal_referral(), NEW_FIELD: "Bee"}
    event = EventInput(header(event_type="referral.nrm"), payload, "Referral")
    result = explain(loaded, event, datetime(2026, 11, 30, tzinfo=UTC), registry())
    assert NEW_FIELD in result.withheld_paths["met"]


def test_every_event_type_names_a_payload_record_the_catalogue_holds() -> None:
    _clear_caches()
    for event_type in registry().event_types():
        assert (
            registry().current(registry().payload_record(event_type)).name
            == (EVENT_TYPES[event_type])
        )


def _minimal_referral() -> dict[str, Any]:
    """A referral the shipped schemas accept (v1 fields; every later field is optional)."""
    return referral()
