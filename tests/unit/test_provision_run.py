"""A provisioning run against an in-memory cluster, and password handling (no broker)."""

from __future__ import annotations

import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from broker.errors import ConfigError
from broker.provision.credentials import (
    credential_path,
    load_secrets,
    read_credential,
    write_credential,
)
from broker.provision.diff import ClusterState
from broker.provision.plan import Acl, Naming, ProvisionPlan, TopicSpec, build_plan
from broker.provision.run import provision
from broker.settings import Settings

NAMING = Naming("ingress.", "deliver.", "msht.audit", "msht.quarantine")
SETTINGS = Settings()


class FakeCluster:
    """An in-memory cluster that records every change."""

    def __init__(self) -> None:
        self.topics: dict[str, int] = {}
        self.users: dict[str, str] = {"admin": "admin-secret"}
        self.acls: set[Acl] = set()
        self.configs: dict[str, dict[str, str]] = {}
        self.calls: list[str] = []

    def state(self) -> ClusterState:
        return ClusterState(dict(self.topics), frozenset(self.users), frozenset(self.acls))

    def topic_configs(self, names: Iterable[str]) -> dict[str, dict[str, str]]:
        return {n: dict(self.configs[n]) for n in names}

    def create_topics(self, topics: Iterable[TopicSpec]) -> None:
        for t in topics:
            self.calls.append(f"topic {t.name}")
            self.topics[t.name] = t.partitions
            self.configs[t.name] = dict(t.configs)

    def alter_topic_configs(
        self, changes: Iterable[tuple[str, tuple[tuple[str, str], ...]]]
    ) -> None:
        for name, configs in changes:
            self.calls.append(f"alter {name}")
            self.configs[name].update(configs)

    def upsert_users(self, passwords: Mapping[str, str]) -> None:
        for user, password in passwords.items():
            self.calls.append(f"user {user}")
            self.users[user] = password

    def delete_users(self, users: Iterable[str]) -> None:
        for user in users:
            self.calls.append(f"-user {user}")
            del self.users[user]

    def create_acls(self, acls: Iterable[Acl]) -> None:
        for a in acls:
            self.calls.append("acl")
            self.acls.add(a)

    def delete_acls(self, acls: Iterable[Acl]) -> None:
        for a in acls:
            self.calls.append("-acl")
            self.acls.discard(a)


def plan(*partners: str) -> ProvisionPlan:
    return build_plan(NAMING, partners=partners, agencies=partners)


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    cluster = FakeCluster()
    result = provision(SETTINGS, plan("cps"), credentials_dir=tmp_path, dry_run=True, admin=cluster)
    assert cluster.calls == []
    assert not result.applied
    assert result.diff.changes_anything


def test_dry_run_writes_no_password(tmp_path: Path) -> None:
    provision(SETTINGS, plan("cps"), credentials_dir=tmp_path, dry_run=True, admin=FakeCluster())
    assert list(tmp_path.iterdir()) == []


def test_second_run_changes_nothing(tmp_path: Path) -> None:
    cluster = FakeCluster()
    provision(SETTINGS, plan("cps"), credentials_dir=tmp_path, admin=cluster)
    cluster.calls.clear()
    result = provision(SETTINGS, plan("cps"), credentials_dir=tmp_path, admin=cluster)
    assert cluster.calls == []
    assert not result.diff.changes_anything


def test_generated_password_is_stored_for_each_new_user(tmp_path: Path) -> None:
    cluster = FakeCluster()
    result = provision(SETTINGS, plan("cps"), credentials_dir=tmp_path, admin=cluster)
    assert read_credential(tmp_path, "cps") == cluster.users["cps"]
    assert credential_path(tmp_path, "cps") in result.credentials_written


def test_supplied_password_is_used_and_not_stored(tmp_path: Path) -> None:
    cluster = FakeCluster()
    provision(
        SETTINGS,
        plan("cps"),
        credentials_dir=tmp_path,
        secrets={"cps": "from-the-vault"},
        admin=cluster,
    )
    assert cluster.users["cps"] == "from-the-vault"
    assert not credential_path(tmp_path, "cps").exists()


def test_existing_user_keeps_its_password(tmp_path: Path) -> None:
    cluster = FakeCluster()
    cluster.users["cps"] = "set-before"
    provision(SETTINGS, plan("cps"), credentials_dir=tmp_path, admin=cluster)
    assert cluster.users["cps"] == "set-before"


def test_removed_partner_loses_its_acls(tmp_path: Path) -> None:
    cluster = FakeCluster()
    provision(SETTINGS, plan("cps", "nca"), credentials_dir=tmp_path, admin=cluster)
    provision(SETTINGS, plan("cps"), credentials_dir=tmp_path, admin=cluster)
    assert not any(a.principal == "User:nca" for a in cluster.acls)


def test_pruned_partner_loses_its_user_and_stored_password(tmp_path: Path) -> None:
    cluster = FakeCluster()
    provision(SETTINGS, plan("cps", "nca"), credentials_dir=tmp_path, admin=cluster)
    provision(SETTINGS, plan("cps"), credentials_dir=tmp_path, prune=True, admin=cluster)
    assert "nca" not in cluster.users
    assert not credential_path(tmp_path, "nca").exists()


def test_topics_and_users_exist_before_acls_are_granted(tmp_path: Path) -> None:
    cluster = FakeCluster()
    provision(SETTINGS, plan("cps"), credentials_dir=tmp_path, admin=cluster)
    first_acl = cluster.calls.index("acl")
    assert all(c.startswith(("topic", "user")) for c in cluster.calls[:first_acl])


def test_stored_password_is_readable_only_by_its_owner(tmp_path: Path) -> None:
    path = write_credential(tmp_path / "credentials", "cps", "secret")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_secrets_directory_supplies_passwords(tmp_path: Path) -> None:
    (tmp_path / "cps.password").write_text("s3cret\n", encoding="utf-8")
    assert load_secrets(tmp_path) == {"cps": "s3cret"}


def test_secrets_yaml_file_supplies_passwords(tmp_path: Path) -> None:
    path = tmp_path / "secrets.yaml"
    path.write_text("cps: s3cret\nnca: other\n", encoding="utf-8")
    assert load_secrets(path) == {"cps": "s3cret", "nca": "other"}


def test_empty_secret_is_refused(tmp_path: Path) -> None:
    (tmp_path / "cps.password").write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="empty"):
        load_secrets(tmp_path)


def test_secrets_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secrets.yaml"
    path.write_text("- cps\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="must map user names"):
        load_secrets(path)


def test_a_run_alters_an_ingress_topic_stamped_with_create_time(tmp_path: Path) -> None:
    cluster = FakeCluster()
    p = plan("cps")
    provision(SETTINGS, p, credentials_dir=tmp_path, admin=cluster)
    cluster.configs["ingress.cps"]["message.timestamp.type"] = "CreateTime"
    provision(SETTINGS, p, credentials_dir=tmp_path, admin=cluster)
    assert "alter ingress.cps" in cluster.calls
    assert cluster.configs["ingress.cps"]["message.timestamp.type"] == "LogAppendTime"


def test_a_second_run_on_a_provisioned_cluster_alters_nothing(tmp_path: Path) -> None:
    cluster = FakeCluster()
    p = plan("cps")
    provision(SETTINGS, p, credentials_dir=tmp_path, admin=cluster)
    result = provision(SETTINGS, p, credentials_dir=tmp_path, admin=cluster)
    assert result.diff.topics_alter == ()
