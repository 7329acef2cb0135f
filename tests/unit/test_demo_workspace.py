"""The demo's folder, keys and run-unique names never touch anything that is not the demo's."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from broker.crypto.trust import load_trust_store
from broker.demo.story import POLICY, PUBLISHERS
from broker.demo.workspace import (
    MARKER,
    create_keys,
    demo_settings,
    is_demo_topic,
    new_run_id,
    prepare_directory,
    run_topics,
)
from broker.errors import ConfigError
from broker.policy import load_policy
from broker.settings import Settings
from broker.types import AgencyId

RUN = "demo-20261128101500-0a1b"


def test_run_id_carries_the_time_and_is_recognised() -> None:
    run = new_run_id(datetime(2026, 11, 28, 10, 15, 0, tzinfo=UTC))
    assert run.startswith("demo-20261128101500-")
    assert is_demo_topic(f"{run}.audit")


def test_two_run_ids_in_the_same_second_differ() -> None:
    moment = datetime(2026, 11, 28, 10, 15, 0, tzinfo=UTC)
    assert len({new_run_id(moment) for _ in range(20)}) > 1


@pytest.mark.parametrize(
    "topic", ["msht.audit", "ingress.met-police", "demo-2026.audit", f"{RUN}", "demo-x.audit"]
)
def test_topics_of_a_real_exchange_are_not_demo_topics(topic: str) -> None:
    assert not is_demo_topic(topic)


def test_every_topic_and_group_of_a_run_carries_the_run_id(tmp_path: Path) -> None:
    settings = demo_settings(Settings(), tmp_path, RUN, POLICY)
    topics = run_topics(settings, load_policy(POLICY), PUBLISHERS)
    assert all(t.startswith(f"{RUN}.") for t in topics)
    assert settings.ingress_topic(settings.router_agency).startswith(f"{RUN}.ingress.")
    assert settings.router_group.startswith(f"{RUN}.")
    assert settings.router_transactional_prefix.startswith(f"{RUN}.")
    assert settings.trust_store_path == tmp_path / "trust.yaml"
    assert settings.key_dir_path == tmp_path / "keys"


def test_topics_are_each_publisher_ingress_then_outputs(tmp_path: Path) -> None:
    settings = demo_settings(Settings(), tmp_path, RUN, POLICY)
    policy = load_policy(POLICY)
    topics = run_topics(settings, policy, ["met-police", "cps", "met-police"])
    assert topics[:2] == [f"{RUN}.ingress.met-police", f"{RUN}.ingress.cps"]
    assert f"{RUN}.audit" in topics
    assert f"{RUN}.quarantine" in topics
    partners = {p.id for p in policy.policy.partners}
    assert {f"{RUN}.deliver.{p}" for p in partners} <= set(topics)


def test_a_bad_run_id_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="run id"):
        demo_settings(Settings(), tmp_path, "ingress", POLICY)


def test_a_foreign_non_empty_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not made by `msht demo`"):
        prepare_directory(tmp_path)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_a_file_in_place_of_the_folder_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    target.write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        prepare_directory(target)


def test_a_demo_folder_is_emptied_of_what_a_run_wrote_only(tmp_path: Path) -> None:
    prepare_directory(tmp_path)
    (tmp_path / "outbox" / "cps").mkdir(parents=True)
    (tmp_path / "outbox" / "cps" / "old.xml").write_text("old")
    (tmp_path / "trust.yaml").write_text("old")
    (tmp_path / "notes.txt").write_text("mine")
    prepare_directory(tmp_path)
    assert not (tmp_path / "outbox").exists()
    assert not (tmp_path / "trust.yaml").exists()
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert (tmp_path / MARKER).is_file()


def test_keys_for_the_router_and_every_party_land_in_the_trust_store(tmp_path: Path) -> None:
    settings = demo_settings(Settings(), tmp_path, RUN, POLICY)
    made = create_keys(settings, ["met-police", "cps", "met-police"])
    assert made == ["router", "met-police", "cps"]
    trust = load_trust_store(settings.trust_store_path)
    assert trust.is_router(settings.router_agency)
    assert not trust.is_router("cps")
    for agency in made:
        uses = {k.use for k in trust.agencies[AgencyId(agency)].keys}
        assert uses == {"sign", "encrypt"}
