"""Runtime settings: one pydantic-settings object, read from ``MSHT_*`` environment variables.

Defaults point at the local development Kafka that ``deploy/kafka/kafka.sh start`` runs, so
a fresh checkout works with no configuration at all.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import structlog
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from broker.errors import ConfigError, KeyFileError, PrincipalNotConfiguredError
from broker.types import AgencyId, PartnerId, TopicName

_log = structlog.get_logger(__name__)


def _default_state_dir() -> Path:
    return Path.cwd() / "var"


INGRESS_TOPIC_CONFIGS: tuple[tuple[str, str], ...] = (("message.timestamp.type", "LogAppendTime"),)
"""Configuration every ingress topic must have, wherever it is created: the broker stamps
each record with the time it appended it, the one time a publisher cannot choose, and the
router judges key validity and revocation at it (docs/EVENTS.md, "Which time counts")."""


class Settings(BaseSettings):
    """Everything the CLI, adapters and router need to reach Kafka and find their files."""

    model_config = SettingsConfigDict(env_prefix="MSHT_", frozen=True, extra="ignore")

    bootstrap_servers: str = Field(
        default="127.0.0.1:9092", description="Kafka bootstrap address(es), comma separated."
    )
    security_protocol: Literal["SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="SASL_PLAINTEXT",
        description="SASL_SSL in production; SASL_PLAINTEXT only on a loopback dev broker.",
    )
    sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256"] = "SCRAM-SHA-512"
    username: str = Field(
        default="admin",
        description="SCRAM user this process logs in as (required unless MSHT_DEV=1).",
    )
    password: SecretStr = Field(
        default=SecretStr("admin-secret"), description="SCRAM password for the username."
    )
    password_file: Path | None = Field(
        default=None,
        description="File whose first line is the SCRAM password (instead of MSHT_PASSWORD).",
    )
    dev: bool = Field(
        default=False,
        description="A development run against the local broker: without MSHT_USERNAME the "
        "process logs in as the local admin. Never set in production.",
    )
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Port of /metrics, /healthz and /readyz of long-running processes "
        "(router, subscriber); unset: not served.",
    )
    metrics_host: str = Field(
        default="127.0.0.1", description="Address the metrics port listens on."
    )
    ssl_cafile: Path | None = Field(
        default=None, description="CA bundle that signs the broker certificate (SASL_SSL)."
    )
    client_id: str = "msht-broker"

    state_dir: Path = Field(
        default_factory=_default_state_dir,
        description="Where keys, the trust store, outboxes and rejected input are kept.",
    )
    trust_store: Path | None = Field(
        default=None, description="Trust store file; defaults to <state_dir>/trust.yaml."
    )
    key_dir: Path | None = Field(
        default=None, description="Private key directory; defaults to <state_dir>/keys."
    )
    key_passphrase: SecretStr | None = Field(
        default=None, description="Passphrase of the private key files (PKCS#8 encryption)."
    )
    key_passphrase_file: Path | None = Field(
        default=None,
        description="File whose first line is the key passphrase (instead of MSHT_KEY_PASSPHRASE).",
    )
    operator_key: str | None = Field(
        default=None,
        description=(
            "The operator's Ed25519 public key (unpadded base64url, or a path to the PEM or "
            "export file): when set, an unsigned or wrongly signed trust store is refused."
        ),
    )
    policy_file: Path | None = Field(
        default=None, description="Routing policy; defaults to deploy/policy.yaml."
    )

    clock_skew_seconds: int = Field(
        default=300, ge=0, description="How far in the future an event's time may lie."
    )

    ingress_prefix: str = "ingress."
    delivery_prefix: str = "deliver."
    quarantine_topic: TopicName = TopicName("msht.quarantine")
    audit_topic: TopicName = TopicName("msht.audit")
    rejected_topic: TopicName = TopicName("msht.rejected")
    held_topic: TopicName = Field(
        default=TopicName("msht.held"),
        description="Events held for a human decision, sealed to the reviewers (docs/REVIEW.md).",
    )
    decisions_topic: TopicName = Field(
        default=TopicName("msht.decisions"),
        description="Reviewers' signed release and refusal decisions, consumed by the router.",
    )
    reviewer: str | None = Field(
        default=None,
        description="The reviewer `msht held` acts as (their keys are in the key directory).",
    )
    held_warn_hours: float = Field(
        default=72.0,
        gt=0,
        description="A hold older than this is reported by `msht held list` and at router start.",
    )

    router_agency: AgencyId = Field(
        default=AgencyId("router"),
        description="Agency id of the router in the trust store (marked `router: true`).",
    )
    router_group: str = Field(
        default="msht-router", description="Consumer group the router instances share."
    )
    router_transactional_prefix: str = Field(
        default="msht-router-",
        description="Prefix of the router's transactional ids (one per input partition).",
    )
    replication_factor: int = Field(
        default=1,
        ge=1,
        description="Replicas of each topic `msht provision` creates (3 on a production cluster); "
        "an existing topic with fewer is reported.",
    )
    min_insync_replicas: int = Field(
        default=1,
        ge=1,
        description="In-sync replicas a write (acks=all) needs on each provisioned topic (2 on a "
        "production cluster of three); an existing topic that needs fewer is reported.",
    )
    dedup_window: int = Field(
        default=100_000,
        ge=1,
        description="Event ids the router remembers per input partition to drop re-publications.",
    )

    def ingress_topic(self, agency: AgencyId) -> TopicName:
        """The topic only ``agency`` may write its signed events to."""
        return TopicName(f"{self.ingress_prefix}{agency}")

    def delivery_topic(self, partner: PartnerId) -> TopicName:
        """The topic only ``partner`` may read its deliveries from."""
        return TopicName(f"{self.delivery_prefix}{partner}")

    @property
    def trust_store_path(self) -> Path:
        """The trust store file in use."""
        return self.trust_store or self.state_dir / "trust.yaml"

    def key_passphrase_bytes(self) -> bytes | None:
        """The private keys' passphrase from ``key_passphrase`` or ``key_passphrase_file``."""
        if self.key_passphrase is not None:
            return self.key_passphrase.get_secret_value().encode("utf-8") or None
        if self.key_passphrase_file is None:
            return None
        try:
            text = self.key_passphrase_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise KeyFileError(
                f"MSHT_KEY_PASSPHRASE_FILE {self.key_passphrase_file}: cannot read ({exc.strerror})"
            ) from exc
        line = text.splitlines()[0] if text else ""
        if not line:
            raise KeyFileError(f"MSHT_KEY_PASSPHRASE_FILE {self.key_passphrase_file}: empty")
        return line.encode("utf-8")

    @property
    def key_dir_path(self) -> Path:
        """The directory holding agency private keys."""
        return self.key_dir or self.state_dir / "keys"


ENV_PREFIX = "MSHT_"

OTHER_PREFIXES: tuple[str, ...] = ("MSHT_KAFKA_",)
"""``MSHT_*`` variables read outside the settings object (``deploy/kafka/kafka.sh``, the
local broker's script); never reported as unknown."""


def known_variables() -> list[str]:
    """Every ``MSHT_*`` variable the settings read."""
    return sorted(ENV_PREFIX + name.upper() for name in Settings.model_fields)


def unknown_variables(environ: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """Each ``MSHT_*`` variable in ``environ`` no setting reads, with the closest known one
    (``None`` when nothing is close): a misspelt variable would otherwise be ignored."""
    known = known_variables()
    out: list[tuple[str, str | None]] = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in known or name.startswith(OTHER_PREFIXES):
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        out.append((name, close[0] if close else None))
    return out


def _read_secret_file(variable: str, path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{variable} {path}: cannot read ({exc.strerror})") from exc
    line = text.splitlines()[0] if text else ""
    if not line:
        raise ConfigError(f"{variable} {path}: empty")
    return line


_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def _local(bootstrap_servers: str) -> bool:
    """Whether every bootstrap address is on this host's loopback interface."""
    hosts = [a.strip().rpartition(":")[0] for a in bootstrap_servers.split(",") if a.strip()]
    return bool(hosts) and all(h in _LOOPBACK or h.startswith("127.") for h in hosts)


def report_unknown_variables(environ: Mapping[str, str] | None = None) -> None:
    """Log a warning for each ``MSHT_*`` variable no setting reads, naming the closest one."""
    for name, close in unknown_variables(os.environ if environ is None else environ):
        _log.warning(
            "unknown setting ignored",
            variable=name,
            did_you_mean=close or "(no setting is close; see README, Settings)",
        )


def load_settings(
    *,
    dev_run: bool = False,
    principal: bool = True,
) -> Settings:
    """Read the settings from the environment (``MSHT_*``).

    Raises :class:`ConfigError` naming each bad variable, so every command reports a value
    it cannot use as an error, not a traceback; :class:`PrincipalNotConfiguredError` when
    ``MSHT_USERNAME`` is unset and this is not a development run (``MSHT_DEV=1``, or
    ``dev_run`` for commands that only ever talk to the local broker, like the demo).
    ``principal=False`` is for commands that never connect to Kafka (``msht tls``).
    The password is read from ``MSHT_PASSWORD_FILE`` when that is set.
    """
    try:
        settings = Settings()
    except ValidationError as exc:
        raise ConfigError(f"settings (MSHT_* environment variables): {exc}") from exc
    unset = "username" not in settings.model_fields_set
    if principal and unset and not (settings.dev or dev_run):
        raise PrincipalNotConfiguredError(
            "MSHT_USERNAME is not set: each process logs in as its own provisioned principal "
            "(MSHT_USERNAME and MSHT_PASSWORD or MSHT_PASSWORD_FILE); set MSHT_DEV=1 only for "
            "a development run against the local broker, which logs in as its admin"
        )
    if principal and unset and not _local(settings.bootstrap_servers):
        raise PrincipalNotConfiguredError(
            f"MSHT_USERNAME is not set and MSHT_BOOTSTRAP_SERVERS {settings.bootstrap_servers} "
            "is not the local broker: a development run logs in as the admin only on loopback"
        )
    if settings.password_file is not None:
        if "password" in settings.model_fields_set:
            raise ConfigError("MSHT_PASSWORD and MSHT_PASSWORD_FILE are both set; use one")
        secret = _read_secret_file("MSHT_PASSWORD_FILE", settings.password_file)
        settings = settings.model_copy(update={"password": SecretStr(secret)})
    return settings
