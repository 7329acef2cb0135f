"""``msht keys``: an agency's keys from birth to revocation, and the trust store that lists them.

``generate`` makes an agency's Ed25519 signing key and X25519 encryption key (or one, with
``--use``), or the operator's trust-store signing key (``--operator``); ``rotate``,
``revoke``, ``list``, ``export`` and ``import`` manage the trust store. Every change is
written in one step (all files or none), and when the operator's key is in the key
directory the trust store is signed in that same step. Output is printed only after
everything is written, so a closed pipe (``| head``) cannot leave half a change behind.

Private keys are encrypted with ``MSHT_KEY_PASSPHRASE`` or the first line of
``MSHT_KEY_PASSPHRASE_FILE`` when either is set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from broker.crypto.key_lifecycle import (
    export_text,
    import_keys,
    key_state,
    parse_duration,
    revoke_key,
    rotate_key,
)
from broker.crypto.keyring import USES, generate_agency_keys, read_store, save_operator_key
from broker.crypto.private_files import FileSet
from broker.crypto.signing_keys import (
    SigningKey,
    generate_signing_key,
)
from broker.crypto.trust_signature import OPERATOR, find_operator_key, operator_public_text
from broker.errors import KeyFileError, TrustStoreError
from broker.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``msht keys generate|rotate|revoke|list|export|import``."""
    parser = sub.add_parser(
        "keys",
        help="agency keys and the trust store: generate, rotate, revoke, list, export, import",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    inner = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    gen = inner.add_parser("generate", help="new keys for an agency (or the operator's key)")
    who = gen.add_mutually_exclusive_group(required=True)
    who.add_argument("--agency", help="agency id the keys belong to")
    who.add_argument(
        "--operator", action="store_true", help="the operator's trust-store signing key"
    )
    gen.add_argument(
        "--use",
        choices=USES,
        default=None,
        help="only this key (default: both; the router needs both)",
    )
    _common(gen)
    gen.add_argument("--valid-days", type=int, default=365, help="validity in the trust store")
    gen.add_argument("--router", action="store_true", help="mark the agency as the router")
    gen.add_argument(
        "--passphrase-env", default=None, help="environment variable holding a passphrase"
    )
    gen.set_defaults(handler=_generate)

    rot = inner.add_parser("rotate", help="a new key valid now; the old one ends after an overlap")
    rot.add_argument("--agency", required=True)
    rot.add_argument("--use", choices=USES, required=True)
    rot.add_argument(
        "--overlap", required=True, type=_duration,
        help="how long the old key stays valid (e.g. 7d, 12h, 0s)",
    )  # fmt: skip
    rot.add_argument("--valid-days", type=int, default=365, help="validity of the new key")
    _common(rot)
    rot.set_defaults(handler=_rotate)

    rev = inner.add_parser("revoke", help="refuse a key's signatures from a time on")
    rev.add_argument("key_id", metavar="KEY_ID")
    rev.add_argument("--at", type=_time, default=None, help="ISO 8601 time (default: now)")
    rev.add_argument("--reason", required=True, help="why (kept in the trust store)")
    _common(rev)
    rev.set_defaults(handler=_revoke)

    listing = inner.add_parser("list", help="every key and its state")
    listing.add_argument("--trust-store", type=Path, default=None)
    listing.add_argument(
        "--expiring-days", type=int, default=30, help="call a key expiring within N days"
    )
    listing.add_argument("-o", "--output", choices=("text", "json"), default="text")
    listing.set_defaults(handler=_list)

    exp = inner.add_parser("export", help="an agency's public keys as a file to import elsewhere")
    exp.add_argument("--agency", required=True)
    exp.add_argument("--out", type=Path, required=True, help="file to write")
    exp.add_argument("--trust-store", type=Path, default=None)
    exp.set_defaults(handler=_export)

    imp = inner.add_parser("import", help="add another operator's exported public keys")
    imp.add_argument("file", type=Path, metavar="FILE")
    _common(imp)
    imp.set_defaults(handler=_import)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key-dir", "--out", dest="key_dir", type=Path, default=None,
                        help="key directory (default: MSHT_KEY_DIR)")  # fmt: skip
    parser.add_argument("--trust-store", type=Path, default=None,
                        help="trust store file (default: MSHT_TRUST_STORE)")  # fmt: skip


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except TrustStoreError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def emit(lines: Sequence[str]) -> None:
    """Print ``lines``; a reader that went away (``| head``) is not an error, since the
    work they report is already done."""
    try:
        for line in lines:
            print(line)
        sys.stdout.flush()
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _passphrase(settings: Settings, env: str | None = None) -> bytes | None:
    if env:
        value = os.environ.get(env)
        if not value:
            raise KeyFileError(f"--passphrase-env {env}: variable is not set")
        return value.encode("utf-8")
    return settings.key_passphrase_bytes()


def _paths(settings: Settings, args: argparse.Namespace) -> tuple[Path, Path]:
    key_dir: Path = args.key_dir or settings.key_dir_path
    trust: Path = args.trust_store or settings.trust_store_path
    return key_dir, trust


def _operator(key_dir: Path, passphrase: bytes | None) -> SigningKey | None:
    return find_operator_key(key_dir, passphrase)


def _signed_note(trust: Path, operator: SigningKey | None) -> str:
    if operator is not None:
        return f"trust store {trust} (signed by operator key {operator.key_id})"
    return (
        f"trust store {trust} (UNSIGNED: no operator key in the key directory; `msht trust sign`)"
    )


def _generate(args: argparse.Namespace) -> int:
    settings = Settings()
    key_dir, trust = _paths(settings, args)
    passphrase = _passphrase(settings, args.passphrase_env)
    if args.operator:
        return _generate_operator(key_dir, passphrase)
    operator = _operator(key_dir, passphrase)
    made = generate_agency_keys(
        key_dir, trust, args.agency,
        router=args.router,
        signing=args.use in (None, "sign"),
        encryption=args.use in (None, "encrypt"),
        valid_days=args.valid_days,
        passphrase=passphrase,
        operator=operator,
    )  # fmt: skip
    note = ", passphrase-encrypted" if passphrase else ""
    lines: list[str] = []
    if made.signing is not None:
        lines += [f"signing key    {made.signing.key_id}",
                  f"private key    {made.signing_path} (mode 0600{note})"]  # fmt: skip
    if made.encryption is not None:
        lines += [f"encryption key {made.encryption.key_id}",
                  f"private key    {made.encryption_path} (mode 0600{note})"]  # fmt: skip
    lines.append(f"{_signed_note(trust, operator)}: valid {args.valid_days} days")
    emit(lines)
    return 0


def _generate_operator(key_dir: Path, passphrase: bytes | None) -> int:
    key = generate_signing_key(OPERATOR)
    path = save_operator_key(key_dir, key, passphrase)
    emit(
        [
            f"operator key   {key.key_id}",
            f"private key    {path} (mode 0600{', passphrase-encrypted' if passphrase else ''})",
            f"MSHT_OPERATOR_KEY={operator_public_text(key)}",
            "give MSHT_OPERATOR_KEY to every router, publisher and subscriber; "
            "sign the trust store with `msht trust sign`",
        ]
    )
    return 0


def _rotate(args: argparse.Namespace) -> int:
    settings = Settings()
    key_dir, trust = _paths(settings, args)
    passphrase = settings.key_passphrase_bytes()
    operator = _operator(key_dir, passphrase)
    done = rotate_key(
        key_dir, trust, args.agency, args.use, args.overlap,
        valid_days=args.valid_days, passphrase=passphrase, operator=operator,
    )  # fmt: skip
    lines = [
        f"new {args.use} key {done.new_key_id} valid from now",
        f"private key    {done.new_key_path} (mode 0600)",
    ]
    lines += [
        f"old key        {k} valid until {done.old_keys_end.isoformat()}" for k in done.retired
    ]
    lines.append(_signed_note(trust, operator))
    emit(lines)
    return 0


def _revoke(args: argparse.Namespace) -> int:
    settings = Settings()
    key_dir, trust = _paths(settings, args)
    operator = _operator(key_dir, settings.key_passphrase_bytes())
    at = args.at or datetime.now(UTC).replace(microsecond=0)
    key = revoke_key(trust, args.key_id, at, args.reason, operator=operator)
    emit(
        [
            f"revoked {key.key_id} of {key.agency} from {at.isoformat()}",
            _signed_note(trust, operator),
        ]
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    path = args.trust_store or Settings().trust_store_path
    store = read_store(path) if args.trust_store is None else _must_read(path)
    now = datetime.now(UTC)
    window = timedelta(days=args.expiring_days)
    rows: list[dict[str, Any]] = []
    for agency, entry in store.agencies.items():
        for k in entry.keys:
            rows.append(
                {
                    "agency": agency,
                    "router": entry.router,
                    "use": k.use,
                    "key_id": k.key_id,
                    "state": key_state(k, now, window).value,
                    "not_before": k.not_before.isoformat(),
                    "not_after": k.not_after.isoformat() if k.not_after else None,
                    "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
                    "revocation_reason": k.revocation_reason,
                }
            )
    if args.output == "json":
        emit([json.dumps(rows, indent=2)])
        return 0
    emit(
        [
            f"{r['agency']}\t{r['use']}\t{r['key_id']}\t{r['state']}\t"
            f"{r['not_before']}\t{r['not_after'] or '-'}"
            + (f"\trevoked {r['revoked_at']}: {r['revocation_reason']}" if r["revoked_at"] else "")
            for r in rows
        ]
    )
    return 0


def _must_read(path: Path) -> Any:
    if not path.exists():
        raise TrustStoreError(f"{path}: no trust store there")
    return read_store(path)


def _export(args: argparse.Namespace) -> int:
    path = args.trust_store or Settings().trust_store_path
    text = export_text(_must_read(path), args.agency)
    files = FileSet()
    files.add(args.out, text.encode("utf-8"), mode=0o644, replace=True)
    files.commit()
    emit([f"exported the public keys of {args.agency} to {args.out}"])
    return 0


def _import(args: argparse.Namespace) -> int:
    settings = Settings()
    key_dir, trust = _paths(settings, args)
    operator = _operator(key_dir, settings.key_passphrase_bytes())
    result = import_keys(trust, args.file, operator=operator)
    lines = [f"imported {k}" for k in result.added]
    lines += [f"already held {k}" for k in result.unchanged]
    if result.added:
        lines.append(_signed_note(trust, operator))
    emit(lines)
    return 0
