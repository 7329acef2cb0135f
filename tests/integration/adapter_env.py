"""An isolated exchange for the adapter integration tests: keys, trust store, uuid topics."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from adapters.exchange.signed import EnvelopeOpener, EnvelopeSealer
from broker.crypto.keyring import sign_trust_store
from broker.crypto.signing_keys import generate_signing_key, public_key_bytes, save_signing_key
from broker.crypto.trust import TrustedKey, add_key, load_trust_store
from broker.crypto.trust_signature import OPERATOR, operator_public_text
from broker.kafka import clients as kafka
from broker.settings import Settings
from broker.types import AgencyId, PartnerId

AGENCIES = ("met-police", "cps", "ilo-nl")


@dataclass
class Exchange:
    """Settings pointing at this test's own topics and files, plus the agencies' sealers."""

    settings: Settings
    sealers: dict[str, EnvelopeSealer]

    def opener(self) -> EnvelopeOpener:
        """An opener over this exchange's trust store."""
        return EnvelopeOpener(load_trust_store(self.settings.trust_store_path))

    def env(self) -> dict[str, str]:
        """``MSHT_*`` variables that make a CLI or subprocess use this exchange."""
        s = self.settings
        return {
            "MSHT_STATE_DIR": str(s.state_dir),
            "MSHT_INGRESS_PREFIX": s.ingress_prefix,
            "MSHT_DELIVERY_PREFIX": s.delivery_prefix,
            "MSHT_REJECTED_TOPIC": s.rejected_topic,
            "MSHT_BOOTSTRAP_SERVERS": s.bootstrap_servers,
            **({"MSHT_OPERATOR_KEY": s.operator_key} if s.operator_key else {}),
        }

    def topics(self) -> list[str]:
        """Every topic this exchange may use."""
        s = self.settings
        return [
            *(s.ingress_topic(AgencyId(a)) for a in AGENCIES),
            *(s.delivery_topic(PartnerId(a)) for a in AGENCIES),
            s.rejected_topic,
        ]


async def make_exchange(base: Settings, state_dir: Path) -> Exchange:
    """Keys for every agency, a trust store listing them, and created uuid topics."""
    tag = uuid.uuid4().hex[:12]
    settings = base.model_copy(
        update={
            "state_dir": state_dir,
            "ingress_prefix": f"test-ingress-{tag}.",
            "delivery_prefix": f"test-deliver-{tag}.",
            "rejected_topic": f"test-rejected-{tag}",
            "trust_store": None,
            "key_dir": None,
        }
    )
    sealers: dict[str, EnvelopeSealer] = {}
    now = datetime.now(UTC)
    for agency in AGENCIES:
        key = generate_signing_key(agency)
        save_signing_key(key, settings.key_dir_path)
        add_key(
            settings.trust_store_path,
            TrustedKey(
                key_id=key.key_id,
                agency=AgencyId(agency),
                use="sign",
                algorithm="ed25519",
                public_key=public_key_bytes(key.public_key),
                not_before=now - timedelta(days=1),
                not_after=now + timedelta(days=30),
            ),
        )
        sealers[agency] = EnvelopeSealer(key)
    # Signed, and checked by every process of the exchange, as in production.
    operator = generate_signing_key(OPERATOR)
    sign_trust_store(settings.trust_store_path, operator)
    settings = settings.model_copy(update={"operator_key": operator_public_text(operator)})
    exchange = Exchange(settings, sealers)
    await kafka.ensure_topics(settings, exchange.topics())
    return exchange


async def read_all(
    settings: Settings, topic: str, expected: int, wait_seconds: float = 60.0
) -> list[Any]:
    """Every committed record of ``topic`` from the start, waiting for at least ``expected``."""

    records: list[Any] = []
    async with kafka.consumer(settings, topic, group_id=None) as consumer:
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for recs in batch.values():
                records.extend(recs)
            if len(records) >= expected and not batch:
                break
            await asyncio.sleep(0)
    return records
