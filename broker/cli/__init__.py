"""The ``msht`` command line.

Each sub-command lives in its own module under ``broker.cli`` and exposes
``register(subparsers)``; this module only assembles them and maps errors to exit codes.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from broker.errors import MshtError
from broker.logging import configure_logging

# Sub-command modules, in the order `msht --help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "policy",
    "tls",
    "provision",
    "demo",
    "publish",
    "subscribe",
    "router",
    "keys",
    "trust",
    "schemas",
    "audit",
    "held",
)


def build_parser() -> argparse.ArgumentParser:
    """The full ``msht`` argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="msht",
        description=(
            "msht-broker: signed, policy-routed information sharing for modern slavery "
            "and human trafficking investigations. Settings come from MSHT_* environment "
            "variables (see README)."
        ),
    )
    parser.add_argument("--log-level", default="INFO", help="log level (default: INFO)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"broker.cli.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``msht`` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    try:
        code: int = args.handler(args)
    except MshtError as exc:
        print(f"msht: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
