"""An isolated benchmark exchange: keys and trust store in a temp dir, uniquely named topics.

Each run gets its own topic names (``bench-<tag>-ingress.met-police``, ...), so a benchmark
never reads another run's or a test's records, and the router's dedup window and audit
chains start empty. The keys are written as ``msht keys generate`` would write them, so the
router and subscriber subprocesses find them through ``MSHT_KEY_DIR`` and
``MSHT_TRUST_STORE`` exactly as in production.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from broker.crypto.encryption_keys import (
    EncryptionKeyPair,
    generate_encryption_keypair,
    save_private_key,
)
from broker.crypto.encryption_keys import public_key_bytes as x25519_bytes
from broker.crypto.signing_keys import (
    SigningKey,
    generate_signing_key,
    public_key_bytes,
    save_signing_key,
)
from broker.crypto.trust import TrustedKey, TrustStore, add_key
from broker.kafka import clients as kafka
from broker.settings import Settings
from broker.types import AgencyId, PartnerId, TopicName

POLICE = AgencyId("met-police")
"""The publishing agency (the police adapter path)."""
ROUTER = AgencyId("router")
PARTNERS = (PartnerId("nca"), PartnerId("gmp"), PartnerId("salvation-army"))
"""The recipients in ``benchmarks/policy.yaml``: full view, no identity, identity sealed."""
SEALED_PARTNER = PartnerId("salvation-army")
"""The partner whose view keeps identity fields sealed to its key."""
POLICY_FILE = Path(__file__).with_name("policy.yaml")
POLICY_PARTNERS = (*PARTNERS, PartnerId("met-police"))
"""Every partner the policy names: the router wants each one's delivery topic to exist."""


@dataclass(frozen=True)
class Keyring:
    """The keys of one benchmark exchange and the trust store that lists their public halves."""

    key_dir: Path
    trust_path: Path
    trust: TrustStore
    police: SigningKey
    router: SigningKey
    encryption: dict[str, EncryptionKeyPair]


def _trusted_sign(key: SigningKey, now: datetime) -> TrustedKey:
    return TrustedKey(
        key_id=key.key_id,
        agency=key.agency,
        use="sign",
        algorithm="ed25519",
        public_key=public_key_bytes(key.public_key),
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=30),
    )


def make_keyring(directory: Path) -> Keyring:
    """Signing keys for the police and the router, X25519 keys for the router and partners."""
    key_dir = directory / "keys"
    trust_path = directory / "trust.yaml"
    now = datetime.now(UTC).replace(microsecond=0)
    police = generate_signing_key(POLICE)
    router = generate_signing_key(ROUTER)
    save_signing_key(police, key_dir)
    save_signing_key(router, key_dir)
    add_key(trust_path, _trusted_sign(police, now))
    trust = add_key(trust_path, _trusted_sign(router, now), router=True)
    encryption: dict[str, EncryptionKeyPair] = {}
    for holder in (ROUTER, *PARTNERS):
        pair = generate_encryption_keypair()
        short = pair.key_id.split(":", 1)[1][:8]
        save_private_key(pair, key_dir / f"{holder}.{short}.x25519.pem")
        trust = add_key(
            trust_path,
            TrustedKey(
                key_id=pair.key_id,
                agency=AgencyId(holder),
                use="encrypt",
                algorithm="x25519",
                public_key=x25519_bytes(pair.public_key),
                not_before=now - timedelta(days=1),
                not_after=now + timedelta(days=30),
            ),
        )
        encryption[holder] = pair
    return Keyring(key_dir, trust_path, trust, police, router, encryption)


@dataclass(frozen=True)
class BenchExchange:
    """Settings naming this run's own topics, files and consumer group."""

    settings: Settings
    tag: str
    policy_path: Path
    partitions: int

    @property
    def ingress(self) -> TopicName:
        """The police ingress topic."""
        return self.settings.ingress_topic(POLICE)

    def topics(self) -> list[TopicName]:
        """Every topic the router reads or writes in this exchange."""
        s = self.settings
        return [
            self.ingress,
            *(s.delivery_topic(p) for p in POLICY_PARTNERS),
            s.audit_topic,
            s.quarantine_topic,
        ]

    def env(self) -> dict[str, str]:
        """``MSHT_*`` variables that point a router or subscriber subprocess at this exchange."""
        s = self.settings
        return {
            "MSHT_BOOTSTRAP_SERVERS": s.bootstrap_servers,
            "MSHT_SECURITY_PROTOCOL": s.security_protocol,
            "MSHT_SASL_MECHANISM": s.sasl_mechanism,
            "MSHT_USERNAME": s.username,
            "MSHT_PASSWORD": s.password.get_secret_value(),
            "MSHT_STATE_DIR": str(s.state_dir),
            "MSHT_KEY_DIR": str(s.key_dir_path),
            "MSHT_TRUST_STORE": str(s.trust_store_path),
            "MSHT_POLICY_FILE": str(self.policy_path),
            "MSHT_INGRESS_PREFIX": s.ingress_prefix,
            "MSHT_DELIVERY_PREFIX": s.delivery_prefix,
            "MSHT_AUDIT_TOPIC": s.audit_topic,
            "MSHT_QUARANTINE_TOPIC": s.quarantine_topic,
            "MSHT_REJECTED_TOPIC": s.rejected_topic,
            "MSHT_ROUTER_GROUP": f"bench-router-{self.tag}",
            "MSHT_ROUTER_TRANSACTIONAL_PREFIX": f"bench-router-{self.tag}-",
            "MSHT_CLOCK_SKEW_SECONDS": str(s.clock_skew_seconds),
            "MSHT_DEDUP_WINDOW": str(s.dedup_window),
        }


async def create_exchange(
    base: Settings, keyring: Keyring, state_dir: Path, *, partitions: int = 1
) -> BenchExchange:
    """A fresh set of uniquely named topics (created now) over ``keyring``."""
    tag = uuid.uuid4().hex[:10]
    settings = base.model_copy(
        update={
            "state_dir": state_dir,
            "key_dir": keyring.key_dir,
            "trust_store": keyring.trust_path,
            "policy_file": POLICY_FILE,
            "ingress_prefix": f"bench-{tag}-ingress.",
            "delivery_prefix": f"bench-{tag}-deliver.",
            "audit_topic": TopicName(f"bench-{tag}-audit"),
            "quarantine_topic": TopicName(f"bench-{tag}-quarantine"),
            "rejected_topic": TopicName(f"bench-{tag}-rejected"),
        }
    )
    exchange = BenchExchange(settings, tag, POLICY_FILE, partitions)
    await kafka.ensure_topics(settings, exchange.topics(), partitions=partitions)
    return exchange


async def drop_exchange(exchange: BenchExchange) -> None:
    """Delete the exchange's topics (the benchmark leaves nothing behind on the broker)."""
    await kafka.delete_topics(exchange.settings, exchange.topics())
