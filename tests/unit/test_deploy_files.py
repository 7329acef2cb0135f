"""Issue 18 part 5: the container image definition, the systemd units and the Kubernetes
manifests in deploy/ are checked structurally (no Docker, systemd or cluster runs here):
what each must hold to be safe to run, and the Strimzi resources against their schemas."""

from __future__ import annotations

import re
import shlex
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from broker.policy.model import load_policy
from broker.provision.plan import Naming
from broker.provision.run import plan_for_policy
from broker.provision.strimzi import render_yaml, strimzi_resources
from broker.settings import Settings
from tests.unit.strimzi_schemas import STRIMZI_KINDS, schema_problems

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
CONTAINERFILE = DEPLOY / "container" / "Containerfile"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
MANIFESTS = sorted((DEPLOY / "k8s").glob("*.yaml"))


# --- the container image -------------------------------------------------------------------


def _instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` per instruction, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions(CONTAINERFILE.read_text(encoding="utf-8")):
        if instruction[0] == "FROM":
            stages.append([])
        stages[-1].append(instruction)
    return stages


def test_image_is_built_in_stages() -> None:
    stages = _stages()
    assert len(stages) >= 2
    assert all(re.search(r"\sAS\s+\w+", s[0][1], re.IGNORECASE) for s in stages)


def test_image_base_images_are_pinned_not_latest() -> None:
    for stage in _stages():
        image = stage[0][1].split()[0]
        assert ":" in image
        assert not image.endswith(":latest")


def test_image_runtime_installs_the_wheel_built_in_an_earlier_stage() -> None:
    runtime = _stages()[-1]
    copies = [args for word, args in runtime if word == "COPY" and "--from=" in args]
    assert copies
    runs = " ".join(args for word, args in runtime if word == "RUN")
    assert re.search(r"pip install [^&]*\.whl", runs)
    # The runtime stage never sees the source tree: only the wheel and the default policy.
    assert not [a for w, a in runtime if w == "COPY" and "--from=" not in a and "policy" not in a]


def test_image_runs_as_a_non_root_user() -> None:
    users = [args for word, args in _stages()[-1] if word == "USER"]
    assert users
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user.isdigit()  # numeric, so runAsNonRoot can verify it


def test_image_entrypoint_is_msht_in_exec_form() -> None:
    [entry] = [args for word, args in _stages()[-1] if word == "ENTRYPOINT"]
    assert yaml.safe_load(entry) == ["msht"]


def test_image_never_adds_remote_files_or_secrets() -> None:
    for word, args in _instructions(CONTAINERFILE.read_text(encoding="utf-8")):
        assert word != "ADD"
        assert not re.search(r"PASSWORD|PASSPHRASE|SECRET", args, re.IGNORECASE)


# --- the systemd units ---------------------------------------------------------------------


def _unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections of a unit file, each key with every value it was given (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), defaultdict(list))
            continue
        assert current is not None, f"{path.name}: {line!r} outside a section"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: {line!r} is not key=value"
        current[key].append(value)
    return sections


def test_units_exist_for_router_subscriber_and_inbox_watcher() -> None:
    names = {p.name for p in UNITS}
    assert names == {"msht-router.service", "msht-subscriber@.service", "msht-inbox@.service"}


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_unit_restarts_on_failure(path: Path) -> None:
    assert _unit(path)["Service"]["Restart"] == ["on-failure"]


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_unit_is_type_simple_because_msht_sends_no_sd_notify(path: Path) -> None:
    # Type=notify would make systemd wait for READY=1, which no msht process sends; a unit
    # may say notify only once the code does.
    sends_notify = any("READY=1" in p.read_text() for p in (REPO / "broker").rglob("*.py"))
    assert _unit(path)["Service"]["Type"] == (["notify"] if sends_notify else ["simple"])


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_unit_takes_secrets_from_credential_files_never_inline(path: Path) -> None:
    service = _unit(path)["Service"]
    credentials = {v.split(":")[0] for v in service["LoadCredential"]}
    assert credentials == {"kafka-password", "key-passphrase"}
    inline = " ".join(service.get("Environment", []))
    assert "MSHT_PASSWORD=" not in inline
    assert "MSHT_KEY_PASSPHRASE=" not in inline
    [start] = service["ExecStart"]
    assert "$CREDENTIALS_DIRECTORY/kafka-password" in start


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_unit_runs_as_an_unprivileged_user_with_its_own_principal(path: Path) -> None:
    service = _unit(path)["Service"]
    assert service["User"] == ["msht"]
    assert any(v.startswith("MSHT_USERNAME=") for v in service["Environment"])


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_unit_command_is_a_msht_command_that_exists(path: Path) -> None:
    [start] = _unit(path)["Service"]["ExecStart"]
    inner = shlex.split(start)[-1]  # the /bin/sh -c script
    command = inner.split("exec ", 1)[1].split()
    assert command[0].endswith("/msht")
    assert command[1] in {"router", "subscribe", "publish"}


# --- the Kubernetes manifests --------------------------------------------------------------


def _documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        (p.name, d)
        for p in MANIFESTS
        for d in yaml.safe_load_all(p.read_text(encoding="utf-8"))
        if d is not None
    ]


def test_manifests_name_kind_and_namespace() -> None:
    for name, document in _documents():
        assert document.get("apiVersion"), name
        assert document.get("kind"), name
        assert document["metadata"].get("name"), name
        if document["kind"] != "Namespace":
            assert document["metadata"].get("namespace") == "msht", name


def test_strimzi_resources_in_the_manifests_match_their_schemas() -> None:
    found = [(n, d) for n, d in _documents() if d["kind"] in STRIMZI_KINDS]
    assert {d["kind"] for _, d in found} == STRIMZI_KINDS
    for name, document in found:
        assert schema_problems(document) == [], f"{name}: {document['metadata']['name']}"


def test_committed_topics_and_users_are_what_provision_emits_for_the_policy() -> None:
    settings = Settings(replication_factor=3, min_insync_replicas=2)
    naming = Naming.from_settings(settings)
    plan = plan_for_policy(naming, load_policy(DEPLOY / "policy.yaml"))
    emitted = render_yaml(strimzi_resources(plan, cluster="msht", namespace="msht"))
    committed = (DEPLOY / "k8s" / "15-topics-users.yaml").read_text(encoding="utf-8")
    assert list(yaml.safe_load_all(committed)) == list(yaml.safe_load_all(emitted))


def _pods() -> list[tuple[str, dict[str, Any]]]:
    return [
        (n, d["spec"]["template"]["spec"]) for n, d in _documents() if d["kind"] == "Deployment"
    ]


def test_deployments_exist_for_router_subscriber_and_inbox_watcher() -> None:
    commands = {pod["containers"][0]["args"][0] for _, pod in _pods()}
    assert commands == {"router", "subscribe", "publish"}


def test_pods_run_as_non_root_without_privilege_escalation() -> None:
    for name, pod in _pods():
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        for container in pod["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"], name


def test_pods_take_the_kafka_password_from_the_user_operators_secret() -> None:
    for name, pod in _pods():
        env = {e["name"]: e for e in pod["containers"][0]["env"]}
        user = env["MSHT_USERNAME"]["value"]
        assert "value" not in env["MSHT_PASSWORD"], name
        assert env["MSHT_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": user,
            "key": "password",
        }


def test_pod_users_are_users_the_provisioned_resources_create() -> None:
    users = {
        d["metadata"]["name"]
        for n, d in _documents()
        if n == "15-topics-users.yaml" and d["kind"] == "KafkaUser"
    }
    for name, pod in _pods():
        env = {e["name"]: e for e in pod["containers"][0]["env"]}
        assert env["MSHT_USERNAME"]["value"] in users, name
