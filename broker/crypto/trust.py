"""The trust store: which public keys speak for which agency, and when.

A YAML file (format in docs/EVENTS.md)::

    version: 1
    agencies:
      west-yorkshire-police:
        router: false
        keys:
          - key_id: ed25519:3b1f...        # must match the public key
            use: sign                      # sign (Ed25519) | encrypt (X25519, sealed fields)
            algorithm: ed25519             # ed25519 for sign, x25519 for encrypt
            public_key: q0mP...            # raw 32 bytes, unpadded base64url
            not_before: 2026-01-01T00:00:00Z
            not_after: 2027-01-01T00:00:00Z  # optional
            revoked_at: null                  # optional: signatures from then on are refused
            revocation_reason: null           # optional: why (free text, no personal data)

Times without an offset are UTC. A key id is unique across the whole file; a key id that
does not match its public key is refused, so a store cannot name one key with another's id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from broker.crypto.b64 import b64url, from_b64url
from broker.crypto.private_files import write_file
from broker.errors import ConfigError, TrustStoreError, UnknownKeyError
from broker.types import AgencyId, KeyId

FORMAT_VERSION = 1
_ALGORITHM_FOR_USE = {"sign": "ed25519", "encrypt": "x25519"}


class KeyStatus(StrEnum):
    """A key's standing at a given time."""

    VALID = "valid"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    REVOKED = "revoked"


def key_id_for(algorithm: str, public_key: bytes) -> KeyId:
    """``<algorithm>:`` + hex of the first 16 bytes of SHA-256(raw public key)."""
    return KeyId(f"{algorithm}:{hashlib.sha256(public_key).digest()[:16].hex()}")


@dataclass(frozen=True)
class TrustedKey:
    """One public key of one agency with its validity window."""

    key_id: KeyId
    agency: AgencyId
    use: str
    algorithm: str
    public_key: bytes = field(repr=False)
    not_before: datetime
    not_after: datetime | None = None
    revoked_at: datetime | None = None
    revocation_reason: str | None = None

    def status_at(self, when: datetime) -> KeyStatus:
        """Whether the key could be used at ``when`` (revocation wins over the window)."""
        if self.revoked_at is not None and when >= self.revoked_at:
            return KeyStatus.REVOKED
        if when < self.not_before:
            return KeyStatus.NOT_YET_VALID
        if self.not_after is not None and when >= self.not_after:
            return KeyStatus.EXPIRED
        return KeyStatus.VALID


@dataclass(frozen=True)
class AgencyEntry:
    """An agency's keys and whether it is a router (may countersign recipients' views)."""

    agency: AgencyId
    keys: tuple[TrustedKey, ...] = ()
    router: bool = False


@dataclass(frozen=True)
class TrustStore:
    """Every trusted agency and key."""

    agencies: Mapping[AgencyId, AgencyEntry] = field(default_factory=dict)

    def key(self, key_id: str) -> TrustedKey:
        """The key with this id, in whichever agency lists it; :class:`UnknownKeyError` if none."""
        for entry in self.agencies.values():
            for key in entry.keys:
                if key.key_id == key_id:
                    return key
        raise UnknownKeyError(f"key {key_id} is not in the trust store")

    def _keys(self, agency: str, use: str) -> tuple[TrustedKey, ...]:
        entry = self.agencies.get(AgencyId(agency))
        return tuple(k for k in entry.keys if k.use == use) if entry else ()

    def signing_keys(self, agency: str) -> tuple[TrustedKey, ...]:
        """The agency's Ed25519 keys, in file order."""
        return self._keys(agency, "sign")

    def encryption_keys(self, agency: str) -> tuple[TrustedKey, ...]:
        """The agency's X25519 keys, in file order."""
        return self._keys(agency, "encrypt")

    def current_encryption_key(self, agency: str, when: datetime) -> TrustedKey:
        """The newest encryption key of ``agency`` valid at ``when``."""
        valid = [k for k in self.encryption_keys(agency) if k.status_at(when) is KeyStatus.VALID]
        if not valid:
            raise UnknownKeyError(f"agency {agency} has no encryption key valid at {when}")
        return max(valid, key=lambda k: k.not_before)

    def is_router(self, agency: str) -> bool:
        """Whether ``agency`` may countersign recipients' views as the exchange's router."""
        entry = self.agencies.get(AgencyId(agency))
        return bool(entry and entry.router)

    def with_key(self, key: TrustedKey, *, router: bool | None = None) -> TrustStore:
        """A copy with ``key`` added to its agency (created if new)."""
        entries = dict(self.agencies)
        old = entries.get(key.agency, AgencyEntry(key.agency))
        if any(k.key_id == key.key_id for e in entries.values() for k in e.keys):
            raise TrustStoreError(f"key {key.key_id} is already in the trust store")
        entries[key.agency] = replace(
            old, keys=(*old.keys, key), router=old.router if router is None else router
        )
        return TrustStore(entries)

    def with_replaced_key(self, key: TrustedKey) -> TrustStore:
        """A copy in which the key with ``key.key_id`` (same agency) is replaced by ``key``."""
        entry = self.agencies.get(key.agency)
        if entry is None or not any(k.key_id == key.key_id for k in entry.keys):
            raise UnknownKeyError(f"key {key.key_id} of {key.agency} is not in the trust store")
        keys = tuple(key if k.key_id == key.key_id else k for k in entry.keys)
        return TrustStore({**self.agencies, key.agency: replace(entry, keys=keys)})


# --- reading and writing ------------------------------------------------------------------


def _optional_time(value: Any, where: str) -> datetime | None:
    return None if value is None else _time(value, where)


def _time(value: Any, where: str) -> datetime:
    if value is None:
        raise TrustStoreError(f"{where}: required")
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise TrustStoreError(f"{where}: not an ISO 8601 time ({value!r})") from exc
    if not isinstance(value, datetime):
        raise TrustStoreError(f"{where}: not a time")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _key(agency: str, index: int, raw: Any) -> TrustedKey:
    where = f"agencies.{agency}.keys[{index}]"
    if not isinstance(raw, Mapping):
        raise TrustStoreError(f"{where}: must be a mapping")
    use = raw.get("use", "sign")
    if use not in _ALGORITHM_FOR_USE:
        raise TrustStoreError(f"{where}.use: must be sign or encrypt, not {use!r}")
    algorithm = raw.get("algorithm", _ALGORITHM_FOR_USE[use])
    if algorithm != _ALGORITHM_FOR_USE[use]:
        raise TrustStoreError(f"{where}.algorithm: a {use} key must be {_ALGORITHM_FOR_USE[use]}")
    text = raw.get("public_key")
    if not isinstance(text, str):
        raise TrustStoreError(f"{where}.public_key: required (unpadded base64url)")
    try:
        public = from_b64url(text)
    except ValueError as exc:
        raise TrustStoreError(f"{where}.public_key: {exc}") from exc
    if len(public) != 32:
        raise TrustStoreError(f"{where}.public_key: {len(public)} bytes, not 32")
    expected = key_id_for(algorithm, public)
    if raw.get("key_id") != expected:
        raise TrustStoreError(f"{where}.key_id: does not match the public key (it is {expected})")
    not_before = _time(raw.get("not_before"), f"{where}.not_before")
    not_after = _optional_time(raw.get("not_after"), f"{where}.not_after")
    if not_after is not None and not_after <= not_before:
        raise TrustStoreError(f"{where}.not_after: must be later than not_before")
    return TrustedKey(
        key_id=expected,
        agency=AgencyId(agency),
        use=use,
        algorithm=algorithm,
        public_key=public,
        not_before=not_before,
        not_after=not_after,
        revoked_at=_optional_time(raw.get("revoked_at"), f"{where}.revoked_at"),
        revocation_reason=_optional_text(
            raw.get("revocation_reason"), f"{where}.revocation_reason"
        ),
    )


def _optional_text(value: Any, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise TrustStoreError(f"{where}: must be text")


def parse_trust_store(text: str, *, source: str = "trust store") -> TrustStore:
    """A trust store from YAML text. :class:`TrustStoreError` names the bad entry."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TrustStoreError(f"{source}: not valid YAML ({exc})") from exc
    if doc is None:
        return TrustStore({})
    if not isinstance(doc, Mapping):
        raise TrustStoreError(f"{source}: must be a mapping with 'agencies'")
    if doc.get("version", FORMAT_VERSION) != FORMAT_VERSION:
        raise TrustStoreError(f"{source}: version {doc.get('version')!r} is not supported")
    agencies_raw = doc.get("agencies") or {}
    if not isinstance(agencies_raw, Mapping):
        raise TrustStoreError(f"{source}: agencies must be a mapping")
    entries: dict[AgencyId, AgencyEntry] = {}
    seen: set[str] = set()
    for agency, body in agencies_raw.items():
        name = str(agency)
        if not isinstance(body, Mapping):
            raise TrustStoreError(f"agencies.{name}: must be a mapping with 'keys'")
        keys_raw = body.get("keys") or []
        if not isinstance(keys_raw, list):
            raise TrustStoreError(f"agencies.{name}.keys: must be a list")
        keys = tuple(_key(name, i, k) for i, k in enumerate(keys_raw))
        for key in keys:
            if key.key_id in seen:
                raise TrustStoreError(f"agencies.{name}: key {key.key_id} is listed twice")
            seen.add(key.key_id)
        entries[AgencyId(name)] = AgencyEntry(AgencyId(name), keys, bool(body.get("router")))
    return TrustStore(entries)


def load_trust_store(path: Path) -> TrustStore:
    """Read the trust store file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TrustStoreError(f"{path}: cannot read the trust store ({exc.strerror})") from exc
    return parse_trust_store(text, source=str(path))


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def dump_trust_store(store: TrustStore) -> str:
    """The trust store as YAML text (the format :func:`parse_trust_store` reads)."""
    agencies: dict[str, Any] = {}
    for name, entry in store.agencies.items():
        agencies[name] = {
            "router": entry.router,
            "keys": [
                {
                    "key_id": k.key_id,
                    "use": k.use,
                    "algorithm": k.algorithm,
                    "public_key": b64url(k.public_key),
                    "not_before": _iso(k.not_before),
                    "not_after": _iso(k.not_after),
                    "revoked_at": _iso(k.revoked_at),
                    **({"revocation_reason": k.revocation_reason} if k.revocation_reason else {}),
                }
                for k in entry.keys
            ],
        }
    return yaml.safe_dump({"version": FORMAT_VERSION, "agencies": agencies}, sort_keys=False)


def save_trust_store(store: TrustStore, path: Path) -> None:
    """Write the store atomically (temporary file, then rename)."""
    try:
        write_file(path, dump_trust_store(store).encode("utf-8"), mode=0o644)
    except ConfigError as exc:
        raise TrustStoreError(f"{exc} (trust store)") from exc


def add_key(path: Path, key: TrustedKey, *, router: bool | None = None) -> TrustStore:
    """Add ``key`` to the store at ``path`` (created if missing) and return the new store."""
    store = load_trust_store(path) if path.exists() else TrustStore({})
    updated = store.with_key(key, router=router)
    save_trust_store(updated, path)
    return updated
