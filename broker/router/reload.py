"""Live reload of the router's policy and trust store: one swap point, read per batch.

:class:`LiveRouteConfig` holds the :class:`~broker.router.route.RouteConfig` in force. The
router's processors read it (:meth:`LiveRouteConfig.current`) at the start of every batch,
never inside one, so each decision names the one policy version and trust-store digest it
was made under (the audit record's ``policy_version`` and ``trust_version``).

:meth:`LiveRouteConfig.reload` re-reads both files when their bytes changed (or when asked
to, on SIGHUP). A candidate is checked exactly as at start-up — the policy by
``msht policy check``'s rules, the trust store by its operator signature when
``MSHT_OPERATOR_KEY`` is set, and the router still marked ``router: true`` in it — and
installed with one assignment. One that fails is refused with its reason: logged, counted,
and the configuration in force stays.

Change is detected by polling the files' SHA-256 rather than by file-system events: the
files are a few kilobytes, a digest sees every change (an editor's rename-over, a copy that
keeps the mtime, a ConfigMap symlink swap) and needs no extra dependency or OS facility.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker.crypto.trust_signature import LoadedTrustStore, load_authentic_trust_store
from broker.errors import ConfigError, MshtError
from broker.logging import get_logger
from broker.policy import LoadedPolicy, load_checked_policy
from broker.router.route import RouteConfig

_log = get_logger(__name__)

PolicyVet = Callable[[LoadedPolicy], Awaitable[None]]
"""An extra check of a candidate policy (the router's: its delivery topics exist)."""


@dataclass(frozen=True)
class Refusal:
    """A candidate policy or trust store that was not installed, and why."""

    what: str
    """``policy`` or ``trust store``."""
    path: str
    reason: str


@dataclass
class ReloadStats:
    """What reloading did so far in this process."""

    applied: int = 0
    refused: int = 0
    last_refusal: Refusal | None = None


def _fingerprint(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


@dataclass
class LiveRouteConfig:
    """The router's configuration in force, replaced whole by :meth:`reload`."""

    config: RouteConfig
    policy_path: Path
    trust_path: Path
    operator_key: Ed25519PublicKey | None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    stats: ReloadStats = field(default_factory=ReloadStats)
    _seen: tuple[str | None, str | None] = field(init=False)

    def __post_init__(self) -> None:
        self._seen = (_fingerprint(self.policy_path), _fingerprint(self.trust_path))

    def current(self) -> RouteConfig:
        """The configuration in force (the one swap point processors read per batch)."""
        return self.config

    async def reload(self, *, force: bool = False, vet: PolicyVet | None = None) -> bool:
        """Install the files' current content if it changed (or ``force``) and validates.

        Returns whether a new configuration was installed. A candidate that does not
        validate is refused (:class:`Refusal` in ``stats``, logged); a refused file is not
        tried again until its bytes change or ``force`` is given.
        """
        seen = (_fingerprint(self.policy_path), _fingerprint(self.trust_path))
        if seen == self._seen and not force:
            return False
        self._seen = seen
        candidate = await self._candidate(vet)
        if isinstance(candidate, Refusal):
            self._refuse(candidate)
            return False
        old = self.config
        if (candidate.policy.version, candidate.trust_version) == (
            old.policy.version,
            old.trust_version,
        ):
            return False
        self.config = candidate
        self.stats.applied += 1
        _log.info(
            "router configuration reloaded",
            policy_version=candidate.policy.version,
            trust_version=candidate.trust_version,
            previous_policy_version=old.policy.version,
            previous_trust_version=old.trust_version,
        )
        return True

    async def _candidate(self, vet: PolicyVet | None) -> RouteConfig | Refusal:
        try:
            policy = load_checked_policy(self.policy_path, self.clock())
        except MshtError as exc:
            return Refusal("policy", str(self.policy_path), str(exc))
        try:
            trust = self._trust()
        except MshtError as exc:
            return Refusal("trust store", str(self.trust_path), str(exc))
        if vet is not None and policy.version != self.config.policy.version:
            try:
                await vet(policy)
            except MshtError as exc:
                return Refusal("policy", str(self.policy_path), str(exc))
        return replace(self.config, policy=policy, trust=trust.store, trust_version=trust.digest)

    def _trust(self) -> LoadedTrustStore:
        loaded = load_authentic_trust_store(self.trust_path, self.operator_key, component="router")
        agency = self.config.identity.agency
        if not loaded.store.is_router(agency):
            raise ConfigError(
                f"{self.trust_path}: {agency!r} is not marked `router: true`; recipients "
                "would refuse the router's countersignatures"
            )
        return loaded

    def _refuse(self, refusal: Refusal) -> None:
        self.stats.refused += 1
        self.stats.last_refusal = refusal
        _log.error(
            "router configuration reload refused; the one in force stays",
            what=refusal.what,
            path=refusal.path,
            reason=refusal.reason,
            refused=self.stats.refused,
            policy_version=self.config.policy.version,
            trust_version=self.config.trust_version,
        )


async def watch(
    live: LiveRouteConfig,
    stop: asyncio.Event,
    *,
    wake: asyncio.Event | None = None,
    every: float = 2.0,
    vet: PolicyVet | None = None,
) -> None:
    """Poll the files every ``every`` seconds, and at once when ``wake`` is set (SIGHUP)."""
    wake = wake or asyncio.Event()
    while not stop.is_set():
        stopping = asyncio.ensure_future(stop.wait())
        woken = asyncio.ensure_future(wake.wait())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait({stopping, woken}, timeout=every, return_when="FIRST_COMPLETED")
        for task in (stopping, woken):
            task.cancel()
        if stop.is_set():
            return
        forced = wake.is_set()
        wake.clear()
        try:
            await live.reload(force=forced, vet=vet)
        except Exception:
            # A reload must never take the router down: what is in force stays in force.
            _log.exception("router configuration reload failed; the one in force stays")
