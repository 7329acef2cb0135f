"""``msht provision POLICY``: topics, SCRAM users and ACLs from the partner registry.

See docs/PROVISIONING.md. Runs as the administrator in the settings (``MSHT_USERNAME``); the
router's names come from the settings (``MSHT_ROUTER_AGENCY``, ``MSHT_ROUTER_GROUP``,
``MSHT_ROUTER_TRANSACTIONAL_PREFIX``) with the router contract's defaults.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from broker.policy.model import Policy, load_policy
from broker.provision.credentials import load_secrets
from broker.provision.diff import Action, ProvisionDiff
from broker.provision.plan import DEFAULT_AUDITOR, DEFAULT_OPERATOR, Naming
from broker.provision.run import plan_for_policy, provision
from broker.provision.strimzi import render_yaml, strimzi_resources
from broker.settings import Settings, load_settings

_STYLE = {
    Action.CREATE: "green",
    Action.KEEP: "dim",
    Action.REMOVE: "red",
    Action.REPORT: "yellow",
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``provision`` command."""
    p = sub.add_parser(
        "provision",
        help="create topics, SCRAM users and ACLs from the partner registry",
        description=(
            "Creates the ingress topic of every publishing agency, the delivery topic of every "
            "partner, the audit and quarantine topics, a SCRAM-SHA-512 user per agency, "
            "partner, router, auditor and operator, and exactly the ACLs docs/PROVISIONING.md "
            "lists. Idempotent. A partner removed from the registry loses its ACLs."
        ),
    )
    p.add_argument("policy", type=Path, metavar="POLICY", help="policy file (partner registry)")
    p.add_argument("--partitions", type=int, default=3, help="partitions of new topics (default 3)")
    p.add_argument(
        "--replication-factor",
        type=int,
        default=None,
        help="replicas of new topics; an existing topic with fewer is reported "
        "(default: MSHT_REPLICATION_FACTOR, 1)",
    )
    p.add_argument(
        "--min-insync-replicas",
        type=int,
        default=None,
        help="in-sync replicas an acks=all write needs, set on new topics; an existing topic "
        "that needs fewer is reported (default: MSHT_MIN_INSYNC_REPLICAS, 1)",
    )
    p.add_argument(
        "--agency",
        dest="agencies",
        action="append",
        default=[],
        metavar="ID",
        help="another agency that publishes (repeatable); partners and the trust store's "
        "non-router agencies always do",
    )
    p.add_argument(
        "--trust-store", type=Path, default=None, help="trust store (default: from settings)"
    )
    p.add_argument(
        "--secrets",
        type=Path,
        default=None,
        help="passwords for new users: a directory of <user>.password files or a YAML map",
    )
    p.add_argument(
        "--credentials-dir",
        type=Path,
        default=None,
        help="where generated passwords are written (default: <state_dir>/credentials)",
    )
    p.add_argument("--auditor", default=DEFAULT_AUDITOR, help="auditor user name")
    p.add_argument("--operator", default=DEFAULT_OPERATOR, help="operator user name")
    p.add_argument("--dry-run", action="store_true", help="print the plan; change nothing")
    p.add_argument(
        "--prune",
        action="store_true",
        help="also remove ACLs in scope that are not in the plan, and removed users",
    )
    p.add_argument("--all", action="store_true", help="list kept items too, not only changes")
    p.add_argument(
        "--emit",
        choices=("strimzi",),
        default=None,
        help="write the plan as Strimzi KafkaTopic and KafkaUser resources (YAML) instead of "
        "applying it; nothing on any cluster is read or changed",
    )
    p.add_argument(
        "--strimzi-cluster",
        default="msht",
        metavar="NAME",
        help="with --emit strimzi: the Kafka resource the topics and users belong to "
        "(label strimzi.io/cluster; default msht)",
    )
    p.add_argument(
        "--namespace", default=None, help="with --emit strimzi: the namespace of the resources"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE",
        help="with --emit strimzi: write the YAML here (default: standard output)",
    )
    p.set_defaults(handler=run_provision)


def render(found: ProvisionDiff, console: Console, *, title: str, show_kept: bool) -> None:
    """The plan as a table (kind, action, what, note) and a one-line count."""
    table = Table(title=title, show_lines=False)
    table.add_column("kind")
    table.add_column("action")
    table.add_column("principal", overflow="fold")
    table.add_column("what", overflow="fold")
    table.add_column("note", overflow="fold")
    kept = 0
    for row in found.rows():
        if row.action is Action.KEEP and not show_kept:
            kept += 1
            continue
        style = _STYLE[row.action]
        table.add_row(row.kind, f"[{style}]{row.action}[/]", row.principal, row.subject, row.note)
    if table.row_count:
        console.print(table)
    counts = {a: sum(1 for r in found.rows() if r.action is a) for a in Action}
    summary = ", ".join(f"{counts[a]} {a}" for a in Action)
    hidden = f" ({kept} kept not listed; --all lists them)" if kept else ""
    console.print(f"{summary}{hidden}")


def render_publishers(policy: Policy, console: Console) -> None:
    """Who may publish what: the router quarantines any other type as ``not-permitted``."""
    table = Table(title="who may publish what (others are quarantined as not-permitted)")
    table.add_column("agency")
    table.add_column("event types it may originate", overflow="fold")
    for p in policy.partners:
        types = "any (not restricted)" if p.originates is None else ", ".join(p.originates)
        table.add_row(p.id, types or "nothing")
    console.print(table)


def run(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    """The command's work with the settings and console given (for tests)."""
    policy = load_policy(args.policy)
    naming = Naming.from_settings(
        settings,
        auditor_user=args.auditor,
        operator_user=args.operator,
        partitions=args.partitions,
        replication_factor=args.replication_factor,
        min_insync_replicas=args.min_insync_replicas,
    )
    trust_store = args.trust_store or settings.trust_store_path
    plan = plan_for_policy(naming, policy, extra_agencies=args.agencies, trust_store=trust_store)
    if args.emit == "strimzi":
        text = render_yaml(
            strimzi_resources(plan, cluster=args.strimzi_cluster, namespace=args.namespace)
        )
        if args.out is None:
            sys.stdout.write(text)
        else:
            args.out.write_text(text, encoding="utf-8")
            console.print(
                f"{len(plan.topics)} KafkaTopic and {len(plan.users)} KafkaUser "
                f"resources written to {args.out}"
            )
        return 0
    credentials_dir: Path = args.credentials_dir or settings.state_dir / "credentials"
    result = provision(
        settings,
        plan,
        credentials_dir=credentials_dir,
        secrets=load_secrets(args.secrets),
        prune=args.prune,
        dry_run=args.dry_run,
    )
    title = "provisioning plan (dry run: nothing changed)" if args.dry_run else "provisioned"
    render(result.diff, console, title=title, show_kept=args.all)
    render_publishers(policy.policy, console)
    for path in result.credentials_written:
        console.print(f"password of a new user written to {path} (mode 0600)")
    if result.diff.users_report or result.diff.acls_report or result.diff.topics_report:
        console.print("[yellow]items marked 'report' were left as they are[/]")
    return 0


def run_provision(args: argparse.Namespace) -> int:
    """Entry point of ``msht provision``."""
    return run(args, load_settings(), Console())
