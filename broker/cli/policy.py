"""``msht policy check FILE``, ``msht policy explain FILE EVENT`` and
``msht policy diff CURRENT PROPOSED [--replay]``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from broker.cli.explain_event import load_event, render
from broker.errors import PolicyError
from broker.events.schemas import load_registry, registry
from broker.policy.check import check_policy, policy_notices
from broker.policy.diff import diff_policies
from broker.policy.explain import explain
from broker.policy.lawful import adequacy_list, describe_basis
from broker.policy.model import Policy, load_policy


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``policy`` command and its ``check`` and ``explain`` sub-commands."""
    parser = sub.add_parser("policy", help="validate a routing policy or explain a decision")
    actions = parser.add_subparsers(dest="policy_command", metavar="ACTION", required=True)

    check = actions.add_parser("check", help="validate a policy file and list every problem")
    check.add_argument("file", type=Path, help="the policy YAML file")
    check.add_argument("--at", type=_when, default=None, help="check as of this ISO time")
    check.set_defaults(handler=run_check)

    exp = actions.add_parser("explain", help="show, for every partner, what happens to an event")
    exp.add_argument("file", type=Path, help="the policy YAML file")
    exp.add_argument(
        "event",
        type=Path,
        help="event: JSON {header, payload} or an encoded envelope; signatures are NOT "
        "verified (this explains the policy, not the event's provenance)",
    )
    exp.add_argument("--at", type=_when, default=None, help="decide as of this ISO time")
    exp.add_argument("--schemas", type=Path, default=None, help="folder of .avsc files")
    exp.set_defaults(handler=run_explain)

    dif = actions.add_parser(
        "diff",
        help="what a policy change grants or withholds differently (before it goes live)",
        description="Compare CURRENT and PROPOSED rule by rule and partner by partner; with "
        "--replay, re-decide the events the ingress topics retain (opened in memory with "
        "the router's keys and trust store, as the router does; nothing is written) and "
        "list each past event that would have gone to someone differently, and why. "
        "Identifiers only. Exit 0 when nothing differs, 1 when something does.",
    )
    dif.add_argument("current", type=Path, help="the policy in force")
    dif.add_argument("proposed", type=Path, help="the proposed policy")
    dif.add_argument(
        "--replay",
        action="store_true",
        help="re-decide recorded traffic (needs Kafka, the router's keys and the trust store)",
    )
    dif.set_defaults(handler=run_diff)


def _when(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def run_check(args: argparse.Namespace) -> int:
    """Exit 0 with a one-line summary, or 1 listing every problem."""
    now = args.at or datetime.now(UTC)
    try:
        loaded = load_policy(args.file)
    except PolicyError as exc:
        problems = list(exc.problems) or [str(exc)]
    else:
        problems = check_policy(loaded.policy, now)
    if problems:
        print(f"policy {args.file}: {len(problems)} problem(s)", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    print(
        f"policy OK: {len(loaded.policy.partners)} partners, {len(loaded.policy.rules)} rules, "
        f"version {loaded.version}"
    )
    _print_tables(loaded.policy, now)
    return 0


def _print_tables(policy: Policy, now: datetime) -> None:
    """Who may publish what, each partner's agreement and basis, the adequacy list, notices."""
    print("\nwho may publish what (others are quarantined as not-permitted):")
    for p in policy.partners:
        types = "any (not restricted)" if p.originates is None else ", ".join(p.originates)
        print(f"  {p.id}: {types or 'nothing'}")
    print("\nagreements and lawful bases:")
    for p in policy.partners:
        print(f"  {p.id}: {describe_basis(p)}")
    listed = adequacy_list()
    print(f"\nadequacy list as of {listed.as_of.isoformat()} ({listed.source}):")
    print("  " + ", ".join(f"{code} {name}" for code, name in listed.countries.items()))
    notices = policy_notices(policy, now)
    if notices:
        print("\nnotices:")
        for n in notices:
            print(f"  - {n}")


def run_explain(args: argparse.Namespace) -> int:
    """Print one row per partner: outcome, rule or guard, view, withheld fields, basis."""
    now = args.at or datetime.now(UTC)
    loaded = load_policy(args.file)
    catalogue = load_registry(args.schemas) if args.schemas else registry()
    result = explain(loaded, load_event(args.event), now, catalogue)
    Console(width=160).print(render(result))
    return 0


def run_diff(args: argparse.Namespace) -> int:
    """Print what differs; exit 1 when anything does, 0 when nothing does."""
    current, proposed = load_policy(args.current), load_policy(args.proposed)
    diff = diff_policies(current, proposed)
    print(f"current  {args.current}: {current.version}")
    print(f"proposed {args.proposed}: {proposed.version}")
    for rule in diff.rules:
        print(f"rule {rule.rule}: {rule.change}" + (f" ({rule.detail})" if rule.detail else ""))
    for partner in diff.partners:
        detail = f" ({partner.detail})" if partner.detail else ""
        print(f"partner {partner.partner}: {partner.change}{detail}")
    for r in diff.reach:
        print(f"partner {r.partner}, {r.event_type}:")
        print(f"  before: {', '.join(r.before) or '(never sent)'}")
        print(f"  after:  {', '.join(r.after) or '(never sent)'}")
        for grant in r.granted:
            print(f"  grants:    {grant}")
        for grant in r.withdrawn:
            print(f"  withholds: {grant}")
    differs = not diff.empty
    if args.replay:
        from broker.router.replay import replay
        from broker.settings import load_settings

        result = asyncio.run(replay(load_settings(), current, proposed))
        print(
            f"replay: {result.events} recorded event(s) re-decided, "
            f"{result.quarantined} the router quarantines (not decided), "
            f"{len(result.differences)} decision(s) differ"
        )
        for d in result.differences:
            print(
                f"  event {d.event_id} ({d.event_type}) -> {d.partner}: {d.before}  =>  {d.after}"
            )
        differs = differs or bool(result.differences)
    if not differs:
        print("no difference: the two policies decide every event alike")
    return 1 if differs else 0
