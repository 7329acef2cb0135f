"""``msht schemas``: list the event schemas and check BACKWARD_TRANSITIVE compatibility."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from broker.events.compat import check_registry
from broker.events.schemas import load_registry


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``msht schemas check`` and ``msht schemas list``."""
    parser = sub.add_parser("schemas", help="event schemas: list, check compatibility")
    inner = parser.add_subparsers(dest="schemas_command", metavar="ACTION", required=True)
    check = inner.add_parser(
        "check", help="every version against all earlier ones (BACKWARD_TRANSITIVE)"
    )
    check.add_argument(
        "--dir", type=Path, default=None, help="schema directory (default: installed)"
    )
    check.set_defaults(handler=_check)
    listing = inner.add_parser("list", help="every schema version with its fingerprint")
    listing.add_argument("--dir", type=Path, default=None, help="schema directory")
    listing.add_argument(
        "-o",
        "--output",
        choices=("text", "json"),
        default="text",
        help="text: one tab-separated line per version; json: a JSON array (default: text)",
    )
    listing.set_defaults(handler=_list)


def _check(args: argparse.Namespace) -> int:
    registry = load_registry(args.dir)
    problems = check_registry(registry)
    for problem in problems:
        print(f"BREAK {problem}")
    count = sum(len(registry.versions(n)) for n in registry.names())
    if problems:
        print(f"{len(problems)} compatibility break(s) in {count} schema versions")
        return 1
    print(f"ok: {count} schema versions, every version reads all earlier ones")
    return 0


def _list(args: argparse.Namespace) -> int:
    registry = load_registry(args.dir)
    versions = [v for name in registry.names() for v in registry.versions(name)]
    if args.output == "json":
        rows = [
            {"name": v.name, "version": v.version, "fingerprint": v.fingerprint.hex()}
            for v in versions
        ]
        print(json.dumps(rows, indent=2))
        return 0
    for version in versions:
        print(f"{version.name}\tv{version.version}\t{version.fingerprint.hex()}")
    return 0
