"""The issue's "done when": a new operator goes from an empty directory to a running
multi-process exchange with ``msht`` commands only, as README and docs/KEYS.md walk through.

Every step is a ``msht`` subprocess: the operator key, the router's and each agency's keys
(signed into the trust store as they are made), ``msht trust sign``/``verify``, ``msht policy
check``, ``msht provision`` (topics, SCRAM users, ACLs), then ``msht router`` and ``msht
subscribe`` running as the principals provisioning made, and ``msht publish`` as the agency.
Names carry a uuid so the run shares the local broker with other tests and is removed after.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from broker.kafka import clients as kafka
from broker.provision.apply import ClusterAdmin, admin_config
from broker.settings import Settings
from tests.unit.adapter_samples import sample

MSHT = str(Path(sys.executable).parent / "msht")

POLICY = """\
version: "first"
partners:
  - id: {pb}
    kind: prosecutor
    jurisdiction: GB
    clearance: OFFICIAL_SENSITIVE
    subscriptions: {{event_types: [case.charge]}}
    agreement: {{id: ISA-NEW-OPERATOR, purposes: [prosecution], expires: 2099-01-01}}
views:
  full: {{description: everything the event carries}}
rules:
  - id: charges-to-prosecutor
    match: {{event_types: [case.charge], max_classification: OFFICIAL_SENSITIVE}}
    deliver: {{to: [{pb}], view: full}}
"""


class Operator:
    """One working directory and the ``MSHT_*`` environment every command of it shares."""

    def __init__(self, root: Path, settings: Settings, u: str) -> None:
        self.root = root
        self.u = u
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MSHT_")}
        self.env.update(
            {
                "MSHT_STATE_DIR": str(root),
                "MSHT_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
                "MSHT_INGRESS_PREFIX": f"t{u}.in.",
                "MSHT_DELIVERY_PREFIX": f"t{u}.out.",
                "MSHT_AUDIT_TOPIC": f"t{u}.audit",
                "MSHT_QUARANTINE_TOPIC": f"t{u}.quarantine",
                "MSHT_REJECTED_TOPIC": f"t{u}.rejected",
                "MSHT_ROUTER_AGENCY": f"router-{u}",
                "MSHT_ROUTER_GROUP": f"router-group-{u}",
                "MSHT_ROUTER_TRANSACTIONAL_PREFIX": f"router-txn-{u}-",
                "MSHT_POLICY_FILE": str(root / "policy.yaml"),
                # The operator's own commands (provision, trust) log in as the cluster's
                # admin principal, named explicitly as a production operator would.
                "MSHT_USERNAME": settings.username,
                "MSHT_PASSWORD": settings.password.get_secret_value(),
                "PYTHONUNBUFFERED": "1",
            }
        )

    def as_user(self, user: str) -> dict[str, str]:
        """The environment of a process logged in as ``user`` (its provisioned password)."""
        password = (self.root / "credentials" / f"{user}.password").read_text().strip()
        return {**self.env, "MSHT_USERNAME": user, "MSHT_PASSWORD": password}

    def run(self, *args: str, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            [MSHT, "--log-level", "WARNING", *args], env=env or self.env, cwd=self.root,
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"msht {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def spawn(self, log: str, *args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (self.root / log).open("ab") as out:
            return subprocess.Popen(
                [MSHT, "--log-level", "INFO", *args], env=env, cwd=self.root,
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip


def _remove(settings: Settings, u: str) -> None:
    cluster = ClusterAdmin(settings)
    state = cluster.state()
    ours = {name for name in state.scram_users if u in name}
    cluster.delete_acls(a for a in state.acls if u in a.principal)
    cluster.delete_users(ours)
    client = AdminClient(admin_config(settings))
    for future in client.delete_consumer_groups(
        [f"router-group-{u}", f"pb-{u}"], request_timeout=10
    ).values():
        try:
            future.result()
        except Exception:  # noqa: S112 - a group that never formed is fine
            continue
    asyncio.run(kafka.delete_topics(settings, [t for t in state.topics if u in t]))


@pytest.fixture
def operator(settings: Settings, tmp_path: Path) -> Iterator[Operator]:
    """An empty working directory; everything this run provisioned is removed afterwards."""
    u = uuid.uuid4().hex[:10]
    root = tmp_path / "exchange"
    root.mkdir()
    try:
        yield Operator(root, settings, u)
    finally:
        _remove(settings, u)


def _stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    return process.wait(timeout=60)


def test_a_new_operator_runs_a_multi_process_exchange_with_msht_alone(
    operator: Operator,
) -> None:
    op, u = operator, operator.u
    router, agency, partner = f"router-{u}", f"ag-{u}", f"pb-{u}"
    assert not any(op.root.iterdir())

    # 1. The operator key; its public half is what every process checks the trust store with.
    printed = op.run("keys", "generate", "--operator")
    (line,) = [x for x in printed.splitlines() if x.startswith("MSHT_OPERATOR_KEY=")]
    op.env["MSHT_OPERATOR_KEY"] = line.split("=", 1)[1]
    # 2. The router's keys, and each agency's (each entry signed in as it is made).
    op.run("keys", "generate", "--agency", router, "--router")
    op.run("keys", "generate", "--agency", agency)
    op.run("keys", "generate", "--agency", partner)
    op.run("trust", "sign")
    assert "signed by ed25519:" in op.run("trust", "verify")
    # 3. The policy, checked, then topics, users and ACLs.
    (op.root / "policy.yaml").write_text(POLICY.format(pb=partner))
    op.run("policy", "check", "policy.yaml")
    op.run(
        "provision", "policy.yaml", "--partitions", "1", "--agency", agency,
        "--auditor", f"auditor-{u}", "--operator", f"operator-{u}",
    )  # fmt: skip

    # 4. The router and the partner's subscriber, each as its own provisioned principal.
    routing = op.spawn("router.log", "router", "--instance", "r1", env=op.as_user(router))
    subscribing = op.spawn(
        "subscribe.log", "subscribe", "--partner", partner, "--max", "1",
        env=op.as_user(partner),
    )  # fmt: skip
    try:
        # 5. The agency publishes one of its documents.
        document = op.root / "charge.json"
        document.write_bytes(sample("police/case-charge.json"))
        out = op.run("publish", "--agency", agency, str(document), env=op.as_user(agency))
        assert "published 1" in out.lower() or "1 published" in out.lower(), out
        deadline = time.monotonic() + 90
        while subscribing.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert subscribing.poll() == 0, (op.root / "subscribe.log").read_text()[-3000:]
        rendered = list((op.root / "outbox" / partner).glob("*.xml"))
        assert len(rendered) == 1, (op.root / "subscribe.log").read_text()[-3000:]
    finally:
        _stop(subscribing)
        router_rc = _stop(routing)
    assert router_rc == 0, (op.root / "router.log").read_text()[-3000:]
