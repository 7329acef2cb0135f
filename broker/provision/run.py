"""One provisioning run: read the cluster, compare with the plan, apply (unless a dry run)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from broker.crypto.trust import load_trust_store
from broker.policy.model import LoadedPolicy
from broker.provision.apply import ClusterAdmin
from broker.provision.credentials import generate_password, remove_credential, write_credential
from broker.provision.diff import ClusterState, ProvisionDiff, diff
from broker.provision.plan import (
    Acl,
    Naming,
    ProvisionPlan,
    TopicSpec,
    build_plan,
    publishing_agencies,
)
from broker.settings import Settings


class Cluster(Protocol):
    """What a run needs from the cluster (:class:`ClusterAdmin`, or a fake in tests)."""

    def state(self) -> ClusterState:
        """Topics, SCRAM users and ACLs now on the cluster."""

    def topic_configs(self, names: Iterable[str]) -> Mapping[str, Mapping[str, str]]:
        """The configuration of each named (existing) topic."""

    def create_topics(self, topics: Iterable[TopicSpec]) -> None:
        """Create the topics."""

    def alter_topic_configs(
        self, changes: Iterable[tuple[str, tuple[tuple[str, str], ...]]]
    ) -> None:
        """Set these configuration values on these existing topics."""

    def upsert_users(self, passwords: Mapping[str, str]) -> None:
        """Create SCRAM-SHA-512 credentials."""

    def delete_users(self, users: Iterable[str]) -> None:
        """Remove SCRAM-SHA-512 credentials."""

    def create_acls(self, acls: Iterable[Acl]) -> None:
        """Create ACL bindings."""

    def delete_acls(self, acls: Iterable[Acl]) -> None:
        """Delete exactly these ACL bindings."""


@dataclass(frozen=True)
class ProvisionResult:
    """What a run found and did."""

    diff: ProvisionDiff
    applied: bool
    """False for a dry run: nothing on the cluster was changed."""
    credentials_written: tuple[Path, ...] = ()
    """Password files written for users created with a generated password."""


def trust_store_agencies(path: Path) -> tuple[str, ...]:
    """The non-router agencies of the trust store at ``path`` (none when there is no file)."""
    if not path.is_file():
        return ()
    store = load_trust_store(path)
    return tuple(sorted(str(a) for a, entry in store.agencies.items() if not entry.router))


def plan_for_policy(
    naming: Naming,
    policy: LoadedPolicy,
    *,
    extra_agencies: Iterable[str] = (),
    trust_store: Path | None = None,
) -> ProvisionPlan:
    """The plan for a loaded policy: its partners read, partners and other agencies write.

    Agencies are every partner id, ``extra_agencies`` and the trust store's non-router
    agencies (when ``trust_store`` names an existing file).
    """
    partners = [p.id for p in policy.policy.partners]
    from_store = trust_store_agencies(trust_store) if trust_store is not None else ()
    reviewers = [r.id for r in policy.policy.reviewers]
    # A reviewer's keys are in the trust store, but a reviewer publishes decisions, not events.
    from_store = tuple(a for a in from_store if a != naming.router_user and a not in reviewers)
    agencies = publishing_agencies(partners, extra_agencies, from_store)
    return build_plan(naming, partners=partners, agencies=agencies, reviewers=reviewers)


def provision(
    settings: Settings,
    plan: ProvisionPlan,
    *,
    credentials_dir: Path,
    secrets: Mapping[str, str] | None = None,
    prune: bool = False,
    dry_run: bool = False,
    admin: Cluster | None = None,
) -> ProvisionResult:
    """Bring the cluster to ``plan`` as the administrator in ``settings``.

    New users get the password from ``secrets`` when it has one; otherwise a generated one is
    written to ``credentials_dir`` *before* the user is created, so it is never lost. Order:
    topics, users, new ACLs, then removals (ACLs, then users with ``prune``).
    """
    cluster: Cluster = admin or ClusterAdmin(settings)
    state = cluster.state()
    planned = [t.name for t in plan.topics if t.name in state.topics]
    state = replace(state, topic_configs=cluster.topic_configs(planned))
    found = diff(plan, state, prune=prune, admin_user=settings.username)
    if dry_run:
        return ProvisionResult(found, applied=False)
    supplied = secrets or {}
    passwords: dict[str, str] = {}
    written: list[Path] = []
    for user in found.users_create:
        if user in supplied:
            passwords[user] = supplied[user]
        else:
            passwords[user] = generate_password()
            written.append(write_credential(credentials_dir, user, passwords[user]))
    cluster.create_topics(found.topics_create)
    cluster.alter_topic_configs(found.topics_alter)
    cluster.upsert_users(passwords)
    cluster.create_acls(found.acls_create)
    cluster.delete_acls(found.acls_remove)
    cluster.delete_users(found.users_remove)
    for user in found.users_remove:
        remove_credential(credentials_dir, user)
    return ProvisionResult(found, applied=True, credentials_written=tuple(written))
