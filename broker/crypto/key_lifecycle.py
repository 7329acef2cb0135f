"""A key's life after it is made: rotation, revocation, its state, and moving public keys
between operators (export and import).

Each change is one atomic step (:mod:`broker.crypto.private_files`) and, when the operator's key is
given, leaves the trust store signed (:mod:`broker.crypto.trust_signature`).

An export file is a trust store holding only the exporting agency's entry, plus a
``exported_at`` line; ``import`` reads it with the trust store's own validation, so an
export file cannot smuggle in anything a trust store could not hold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from broker.crypto.keyring import (
    encryption_key_path,
    new_encryption_key,
    new_signing_key,
    read_store,
    signing_key_path,
    stage_key,
    stage_trust_store,
    trusted_encryption,
    trusted_signing,
)
from broker.crypto.private_files import FileSet
from broker.crypto.signing_keys import SigningKey
from broker.crypto.trust import (
    AgencyEntry,
    KeyStatus,
    TrustedKey,
    TrustStore,
    dump_trust_store,
    parse_trust_store,
)
from broker.errors import TrustStoreError, UnknownKeyError
from broker.types import AgencyId, KeyId

_DURATION = re.compile(r"(\d+)([wdhms])")
_UNIT = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``1w2d``, ``90m``, ``0s``: a non-negative duration."""
    if not text or _DURATION.sub("", text) != "":
        raise TrustStoreError(
            f"duration {text!r}: use a number and a unit (w, d, h, m, s), e.g. 7d or 1d12h"
        )
    total = timedelta()
    for number, unit in _DURATION.findall(text):
        total += timedelta(**{_UNIT[unit]: int(number)})
    return total


class KeyState(StrEnum):
    """What ``msht keys list`` says of a key at a given time."""

    VALID = "valid"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRING = "expiring"
    EXPIRED = "expired"
    REVOKED = "revoked"


def key_state(key: TrustedKey, now: datetime, expiring_within: timedelta) -> KeyState:
    """The key's state at ``now``; ``expiring`` when it is valid but ends (by ``not_after`` or
    a revocation set for later) within ``expiring_within``."""
    status = key.status_at(now)
    if status is not KeyStatus.VALID:
        return KeyState(status.value)
    ends = [t for t in (key.not_after, key.revoked_at) if t is not None]
    if ends and min(ends) - now <= expiring_within:
        return KeyState.EXPIRING
    return KeyState.VALID


@dataclass(frozen=True)
class Rotation:
    """What a rotation did: the new key, its file, and the old keys' new end."""

    new_key_id: KeyId
    new_key_path: Path
    retired: tuple[KeyId, ...]
    old_keys_end: datetime


def rotate_key(
    key_dir: Path,
    trust_path: Path,
    agency: str,
    use: str,
    overlap: timedelta,
    *,
    valid_days: int = 365,
    passphrase: bytes | None = None,
    now: datetime | None = None,
    operator: SigningKey | None = None,
) -> Rotation:
    """A new ``use`` key for ``agency`` valid from now; every key of that use still in force
    ends at ``now + overlap`` (or keeps an earlier end it already had)."""
    moment = (now or datetime.now(UTC)).replace(microsecond=0)
    store = read_store(trust_path)
    entry = store.agencies.get(AgencyId(agency))
    if entry is None:
        raise UnknownKeyError(f"agency {agency} is not in {trust_path}: generate its keys first")
    old_end = moment + overlap
    retired: list[KeyId] = []
    for key in entry.keys:
        if key.use != use or key.status_at(moment) in (KeyStatus.EXPIRED, KeyStatus.REVOKED):
            continue
        if key.not_after is not None and key.not_after <= old_end:
            continue
        # A key not yet valid that would end before it starts is ended at its start instead.
        end = max(old_end, key.not_before + timedelta(seconds=1))
        store = store.with_replaced_key(replace(key, not_after=end))
        retired.append(key.key_id)
    files = FileSet()
    until = moment + timedelta(days=valid_days)
    try:
        if use == "sign":
            signing = new_signing_key(agency, key_dir, store)
            path = signing_key_path(key_dir, signing)
            stage_key(files, path, signing.private_key, passphrase)
            new = trusted_signing(signing, moment, until)
        elif use == "encrypt":
            pair = new_encryption_key(agency, key_dir, store)
            path = encryption_key_path(key_dir, agency, pair)
            stage_key(files, path, pair.private_key, passphrase)
            new = trusted_encryption(agency, pair, moment, until)
        else:
            raise TrustStoreError(f"--use {use!r}: must be sign or encrypt")
        store = store.with_key(new)
        stage_trust_store(files, store, trust_path, operator)
    except BaseException:
        files.discard()
        raise
    files.commit()
    return Rotation(new.key_id, path, tuple(retired), old_end)


def revoke_key(
    trust_path: Path,
    key_id: str,
    at: datetime,
    reason: str,
    *,
    operator: SigningKey | None = None,
) -> TrustedKey:
    """Mark ``key_id`` revoked from ``at`` (signatures from then on are refused)."""
    if not reason.strip():
        raise TrustStoreError("--reason: say why the key is revoked (no personal data)")
    store = read_store(trust_path)
    key = store.key(key_id)
    if key.revoked_at is not None and key.revoked_at <= at:
        raise TrustStoreError(
            f"key {key_id} is already revoked from {key.revoked_at.isoformat()} "
            f"({key.revocation_reason or 'no reason given'})"
        )
    revoked = replace(key, revoked_at=at, revocation_reason=reason.strip())
    files = FileSet()
    stage_trust_store(files, store.with_replaced_key(revoked), trust_path, operator)
    files.commit()
    return revoked


# --- moving public keys between operators ----------------------------------------------------


def export_text(store: TrustStore, agency: str, now: datetime | None = None) -> str:
    """The public keys of ``agency`` as a file another operator can import."""
    entry = store.agencies.get(AgencyId(agency))
    if entry is None or not entry.keys:
        raise UnknownKeyError(f"agency {agency} has no keys in the trust store")
    moment = (now or datetime.now(UTC)).replace(microsecond=0)
    header = (
        f"# msht public keys of {agency}, exported {moment.isoformat()}.\n"
        "# Public keys only. Compare the key ids with the agency by a second channel\n"
        "# (telephone, in person) before importing: `msht keys import FILE`.\n"
    )
    return header + dump_trust_store(TrustStore({entry.agency: entry}))


@dataclass(frozen=True)
class ImportResult:
    """What an import added (already-present identical keys are skipped)."""

    added: tuple[KeyId, ...]
    unchanged: tuple[KeyId, ...]


def merge_import(store: TrustStore, incoming: TrustStore) -> tuple[TrustStore, ImportResult]:
    """``store`` with every key of ``incoming``; :class:`TrustStoreError` on any conflict.

    A conflict is: a key id already held with different content (window, revocation,
    agency), or an agency whose router flag differs. Identical keys are left as they are.
    """
    added: list[KeyId] = []
    unchanged: list[KeyId] = []
    for name, entry in incoming.agencies.items():
        current = store.agencies.get(name)
        if current is not None and current.router != entry.router:
            raise TrustStoreError(
                f"import conflicts: {name} is router={current.router} here and "
                f"router={entry.router} in the file; nothing was imported"
            )
        for key in entry.keys:
            try:
                held = store.key(key.key_id)
            except UnknownKeyError:
                store = store.with_key(key, router=entry.router if current is None else None)
                added.append(key.key_id)
                continue
            if held != key:
                raise TrustStoreError(
                    f"import conflicts: key {key.key_id} is already held for {held.agency} "
                    "with a different validity, revocation or agency; nothing was imported"
                )
            unchanged.append(key.key_id)
        if current is None and not entry.keys:
            store = TrustStore({**store.agencies, name: AgencyEntry(name, (), entry.router)})
    return store, ImportResult(tuple(added), tuple(unchanged))


def import_keys(
    trust_path: Path, file: Path, *, operator: SigningKey | None = None
) -> ImportResult:
    """Add the keys of an export ``file`` to the trust store at ``trust_path``, atomically."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise TrustStoreError(f"{file}: cannot read ({exc.strerror})") from exc
    incoming = parse_trust_store(text, source=str(file))
    store, result = merge_import(read_store(trust_path), incoming)
    if result.added:
        files = FileSet()
        stage_trust_store(files, store, trust_path, operator)
        files.commit()
    return result
