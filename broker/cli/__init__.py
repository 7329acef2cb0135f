"""The ``msht`` command line.

Each sub-command lives in its own module under ``broker.cli`` and exposes
``register(subparsers)``; this module only assembles them and maps errors to exit codes.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence
from importlib import metadata

from broker.errors import AuthenticationError, AuthorizationError, MshtError, TlsError
from broker.logging import configure_logging
from broker.settings import report_unknown_variables

# Sub-command modules, in the order `msht --help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "policy",
    "tls",
    "provision",
    "demo",
    "publish",
    "subscribe",
    "verify",
    "router",
    "keys",
    "trust",
    "schemas",
    "audit",
    "quarantine",
    "held",
)


EXIT_ERROR = 2
"""Usage or configuration error, no broker, a refused operation (one ``msht: error:`` line)."""
EXIT_AUTHENTICATION = 4
"""The broker refused the credentials (SASL) or the ACLs refused the principal."""
EXIT_TLS = 5
"""TLS with the broker failed: the CA file is missing or wrong, or the certificate does not
verify or name the host."""


def exit_code(exc: MshtError) -> int:
    """The exit code ``msht`` ends with for ``exc`` (README, "Exit codes")."""
    if isinstance(exc, AuthenticationError | AuthorizationError):
        return EXIT_AUTHENTICATION
    if isinstance(exc, TlsError):
        return EXIT_TLS
    return EXIT_ERROR


def package_version() -> str:
    """The installed msht-broker version ("unknown" when run from an uninstalled tree)."""
    try:
        return metadata.version("msht-broker")
    except metadata.PackageNotFoundError:
        return "unknown"


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
    parser.add_argument("--version", action="version", version=f"msht {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"broker.cli.{name}")
        module.register(sub)
    _plain_help(parser)
    return parser


_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`~?([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")


def plain(text: str) -> str:
    """``text`` without reST markup: module docstrings double as help texts, and a
    terminal shows ``literal`` and :class:`role` markup as noise."""
    text = _ROLE.sub(lambda m: m.group(1).rsplit(".", 1)[-1], text)
    return _LITERAL.sub(r"\1", text)


def _plain_help(parser: argparse.ArgumentParser) -> None:
    """Strip reST markup from the description, epilog and every help of ``parser`` and of
    its sub-commands, recursively."""
    if parser.description:
        parser.description = plain(parser.description)
    if parser.epilog:
        parser.epilog = plain(parser.epilog)
    for action in parser._actions:
        if action.help and action.help is not argparse.SUPPRESS:
            action.help = plain(action.help)
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if choice.help:
                    choice.help = plain(choice.help)
            for child in dict.fromkeys(action.choices.values()):
                _plain_help(child)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``msht`` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    report_unknown_variables()
    try:
        code: int = args.handler(args)
    except MshtError as exc:
        print(f"msht: error: {exc}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
