"""The demo's own corner of the world: a state folder, fresh keys, run-unique topic names.

Every run gets a run id (``demo-<yyyymmddHHMMSS>-<4 hex>``) that prefixes every topic, the
router's consumer group and transactional ids, and the subscribers' groups, so runs never
see each other's records on a shared Kafka. The state folder is emptied and refilled each
run, but only when it is one the demo made (it carries a marker file): the demo never
deletes a folder it did not create.
"""

from __future__ import annotations

import re
import secrets
import shutil
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from broker.crypto.keyring import generate_agency_keys, save_operator_key
from broker.crypto.signing_keys import SigningKey, generate_signing_key
from broker.crypto.trust_signature import OPERATOR, operator_public_text
from broker.errors import ConfigError
from broker.policy import LoadedPolicy
from broker.router.service import output_topics
from broker.settings import Settings
from broker.types import AgencyId, TopicName

MARKER = ".msht-demo"
"""File that marks a folder as the demo's own (safe to empty on the next run)."""

RUN_ID = re.compile(r"^demo-\d{14}-[0-9a-f]{4}$")
"""What a run id looks like; every topic of a run starts with ``<run id>.``."""

_CREATED = ("keys", "trust.yaml", "outbox", "rejected")
"""What a run writes into the folder (and the next run removes)."""


def new_run_id(now: datetime | None = None) -> str:
    """A fresh run id: the UTC time to the second and 4 random hex digits."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"demo-{moment:%Y%m%d%H%M%S}-{secrets.token_hex(2)}"


def is_demo_topic(name: str) -> bool:
    """True for a topic some demo run created (``<run id>.<anything>``)."""
    run, dot, rest = name.partition(".")
    return bool(dot and rest and RUN_ID.match(run))


def demo_settings(base: Settings, directory: Path, run_id: str, policy_file: Path) -> Settings:
    """``base`` (Kafka address and login) with every file and topic name belonging to this run."""
    if not RUN_ID.match(run_id):
        raise ConfigError(f"run id {run_id!r} is not demo-<yyyymmddHHMMSS>-<4 hex>")
    return base.model_copy(
        update={
            "state_dir": directory,
            "trust_store": None,
            "key_dir": None,
            "key_passphrase": None,
            "key_passphrase_file": None,
            "operator_key": None,
            "policy_file": policy_file,
            "ingress_prefix": f"{run_id}.ingress.",
            "delivery_prefix": f"{run_id}.deliver.",
            "audit_topic": TopicName(f"{run_id}.audit"),
            "quarantine_topic": TopicName(f"{run_id}.quarantine"),
            "held_topic": TopicName(f"{run_id}.held"),
            "decisions_topic": TopicName(f"{run_id}.decisions"),
            "rejected_topic": TopicName(f"{run_id}.rejected"),
            "router_group": f"{run_id}.router",
            "router_transactional_prefix": f"{run_id}.router-",
        }
    )


def prepare_directory(directory: Path) -> None:
    """Make ``directory`` an empty demo folder, removing only what an earlier run wrote.

    Raises :class:`ConfigError` when the folder exists, is not empty and is not the demo's.
    """
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"--dir {directory}: exists and is not a folder")
    if directory.is_dir() and any(directory.iterdir()) and not (directory / MARKER).is_file():
        raise ConfigError(
            f"--dir {directory}: the folder is not empty and was not made by `msht demo` "
            f"(no {MARKER} file); give an empty or new folder"
        )
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name in _CREATED:
        path = directory / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    (directory / MARKER).write_text(
        "This folder belongs to `msht demo`; each run empties and refills it.\n"
    )


def with_operator_key(settings: Settings) -> tuple[Settings, SigningKey]:
    """A fresh operator key for the run, and ``settings`` that trust only stores it signed."""
    operator = generate_signing_key(OPERATOR)
    return settings.model_copy(update={"operator_key": operator_public_text(operator)}), operator


def create_keys(
    settings: Settings, parties: Iterable[str], *, operator: SigningKey | None = None
) -> list[str]:
    """Signing and X25519 keys for the router (``router: true``) and each party; the trust store,
    signed by ``operator`` (whose private key is written to the key folder) when given.

    Returns the agencies that were given keys, the router first.
    """
    key_dir, trust = settings.key_dir_path, settings.trust_store_path
    router = str(settings.router_agency)
    if operator is not None:
        save_operator_key(key_dir, operator)
    generate_agency_keys(key_dir, trust, router, router=True, operator=operator)
    made = [router]
    for party in dict.fromkeys(parties):
        if party == router:
            continue
        generate_agency_keys(key_dir, trust, party, operator=operator)
        made.append(party)
    return made


def run_topics(
    settings: Settings, policy: LoadedPolicy, publishers: Iterable[str]
) -> list[TopicName]:
    """Every topic of the run: each publisher's ingress, then audit, quarantine, deliveries."""
    ingress = [settings.ingress_topic(AgencyId(a)) for a in dict.fromkeys(publishers)]
    return [*ingress, *(TopicName(t) for t in output_topics(settings, policy))]
