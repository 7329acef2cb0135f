"""``msht keys``: generate an agency's signing key pair and list the trust store."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from broker.crypto.signing_keys import generate_signing_key, public_key_bytes, save_signing_key
from broker.crypto.trust import TrustedKey, add_key, load_trust_store
from broker.errors import KeyFileError
from broker.settings import Settings
from broker.types import AgencyId


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``msht keys generate`` and ``msht keys list``."""
    parser = sub.add_parser("keys", help="agency signing keys and the trust store")
    inner = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    gen = inner.add_parser("generate", help="write a new Ed25519 key pair for an agency")
    gen.add_argument("--agency", required=True, help="agency id the key signs for")
    gen.add_argument("--out", type=Path, default=None, help="key directory (default: settings)")
    gen.add_argument(
        "--passphrase-env", default=None, help="environment variable holding a passphrase"
    )
    gen.add_argument("--trust-store", type=Path, default=None, help="also add the public key here")
    gen.add_argument("--valid-days", type=int, default=365, help="validity in the trust store")
    gen.add_argument("--router", action="store_true", help="mark the agency as a router")
    gen.set_defaults(handler=_generate)
    listing = inner.add_parser("list", help="the keys in the trust store and their validity")
    listing.add_argument("--trust-store", type=Path, default=None)
    listing.set_defaults(handler=_list)


def _generate(args: argparse.Namespace) -> int:
    settings = Settings()
    passphrase: bytes | None = None
    if args.passphrase_env:
        value = os.environ.get(args.passphrase_env)
        if not value:
            raise KeyFileError(f"--passphrase-env {args.passphrase_env}: variable is not set")
        passphrase = value.encode("utf-8")
    key = generate_signing_key(args.agency)
    directory = args.out or settings.key_dir_path
    path = save_signing_key(key, directory, passphrase=passphrase)
    print(f"key id      {key.key_id}")
    print(f"private key {path} (mode 0600{', passphrase-encrypted' if passphrase else ''})")
    if args.trust_store:
        now = datetime.now(UTC).replace(microsecond=0)
        add_key(
            args.trust_store,
            TrustedKey(
                key_id=key.key_id,
                agency=AgencyId(args.agency),
                use="sign",
                algorithm="ed25519",
                public_key=public_key_bytes(key.public_key),
                not_before=now,
                not_after=now + timedelta(days=args.valid_days),
            ),
            router=True if args.router else None,
        )
        print(f"trust store {args.trust_store} (valid {args.valid_days} days)")
    return 0


def _list(args: argparse.Namespace) -> int:
    path = args.trust_store or Settings().trust_store_path
    store = load_trust_store(path)
    now = datetime.now(UTC)
    for agency, entry in store.agencies.items():
        for k in entry.keys:
            print(
                f"{agency}\t{k.use}\t{k.key_id}\t{k.status_at(now).value}\t"
                f"{k.not_before.isoformat()}\t{k.not_after.isoformat() if k.not_after else '-'}"
            )
    return 0
