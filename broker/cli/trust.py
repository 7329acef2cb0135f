"""``msht trust``: the operator signs the trust store; anyone checks a copy they were given.

``sign`` appends the operator's signature line (key ``msht-operator.<hex>.ed25519.pem`` in the
key directory, made by ``msht keys generate --operator``) and replaces the file in one
rename. ``verify`` checks a trust store against the operator public key
(``--operator-key`` or ``MSHT_OPERATOR_KEY``) and prints its version digest. See docs/KEYS.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from broker.cli.keys import emit
from broker.crypto.keyring import sign_trust_store
from broker.crypto.trust_signature import (
    find_operator_key,
    load_authentic_trust_store,
    parse_operator_key,
    split_signature,
    trust_digest,
)
from broker.errors import KeyFileError
from broker.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``msht trust sign`` and ``msht trust verify``."""
    parser = sub.add_parser(
        "trust",
        help="sign the trust store (operator) or verify a copy of it",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    inner = parser.add_subparsers(dest="trust_command", metavar="ACTION", required=True)
    sign = inner.add_parser("sign", help="sign the trust store with the operator key")
    sign.add_argument("--trust-store", type=Path, default=None)
    sign.add_argument("--key-dir", type=Path, default=None, help="where the operator key is")
    sign.set_defaults(handler=_sign)
    verify = inner.add_parser("verify", help="check the trust store's operator signature")
    verify.add_argument("--trust-store", type=Path, default=None)
    verify.add_argument(
        "--operator-key", default=None, help="operator public key (default: MSHT_OPERATOR_KEY)"
    )
    verify.set_defaults(handler=_verify)


def _sign(args: argparse.Namespace) -> int:
    settings = Settings()
    path: Path = args.trust_store or settings.trust_store_path
    key_dir: Path = args.key_dir or settings.key_dir_path
    operator = find_operator_key(key_dir, settings.key_passphrase_bytes())
    if operator is None:
        raise KeyFileError(
            f"no operator key in {key_dir} (expected msht-operator.<key>.ed25519.pem; "
            "create one with `msht keys generate --operator`)"
        )
    signed = sign_trust_store(path, operator)
    emit([f"signed {path} with operator key {operator.key_id}",
          f"version {trust_digest(split_signature(signed)[0])}"])  # fmt: skip
    return 0


def _verify(args: argparse.Namespace) -> int:
    settings = Settings()
    path: Path = args.trust_store or settings.trust_store_path
    value = args.operator_key or settings.operator_key
    if not value:
        raise KeyFileError("no operator public key: give --operator-key or set MSHT_OPERATOR_KEY")
    loaded = load_authentic_trust_store(path, parse_operator_key(value), component="cli")
    emit([f"{path}: signed by {loaded.signer}", f"version {loaded.digest}"])
    return 0
