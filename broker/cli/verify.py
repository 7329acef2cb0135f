"""``msht verify``: re-check a saved view (``msht subscribe --evidence``) later.

Verifies the router's signature over the view and, on a committed view, the originating
agency's own signature over every disclosed value (the commitment root recomputed from the
values, their salts and the hashes of what was withheld), against the trust store in force
(or ``--trust``), as of ``--as-of`` (default: now): a signature dated after it is refused,
and each key must have been valid and unrevoked when it signed. Sealed fields are opened
with the partner's own encryption keys (``--partner``), which the salts inside them need.

Prints the verification record as JSON; exits 0 when it verifies, 1 with the reason when not.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from broker.errors import CodecError, ConfigError, SealingError, VerificationError
from broker.settings import load_settings
from broker.types import PartnerId


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``verify`` sub-command."""
    p = sub.add_parser(
        "verify",
        help="re-check a saved view: the originator's and the router's signatures",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", type=Path, help="a signed view as delivered (<event_id>.view)")
    p.add_argument("--partner", help="the recipient whose keys open its sealed fields")
    p.add_argument("--trust", type=Path, help="trust store (default: MSHT_TRUST_STORE)")
    p.add_argument(
        "--as-of",
        type=_when,
        help="judge as of this ISO 8601 date or time (default: now)",
    )
    p.set_defaults(handler=run)


def _when(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {text!r}") from exc
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def run(args: argparse.Namespace) -> int:
    """Handler of ``msht verify``."""
    from broker.crypto.encryption_keys import load_private_key
    from broker.crypto.keyfiles import encryption_key_files
    from broker.crypto.trust_signature import (
        load_authentic_trust_store,
        operator_key_from_settings,
        trust_store_from_settings,
    )
    from broker.crypto.view_check import check_view

    settings = load_settings()
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{args.file}: cannot read ({exc.strerror})") from exc
    trust = (
        # Checked against the operator's key when one is configured, as every process does.
        load_authentic_trust_store(
            args.trust, operator_key_from_settings(settings), component="verifier"
        ).store
        if args.trust is not None
        else trust_store_from_settings(settings, component="verifier").store
    )
    partner = PartnerId(args.partner) if args.partner else None
    keys = (
        [
            load_private_key(path, passphrase=settings.key_passphrase_bytes()).private_key
            for path in encryption_key_files(settings.key_dir_path, partner)
        ]
        if partner is not None
        else []
    )
    try:
        checked = check_view(
            data,
            trust,
            partner=partner,
            keys=keys,
            now=args.as_of,
            max_skew=timedelta(seconds=settings.clock_skew_seconds),
        )
    except (VerificationError, CodecError, SealingError) as exc:
        reason = f"{type(exc).__name__}: {exc}"
        print(f"msht verify: {args.file}: NOT VERIFIED: {reason}", file=sys.stderr)
        return 1
    record = checked.verification.to_json()
    record["as_of"] = (args.as_of or datetime.now(UTC)).isoformat()
    print(json.dumps(record, indent=2))
    return 0
