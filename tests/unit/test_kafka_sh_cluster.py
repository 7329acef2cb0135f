"""``kafka.sh cluster-*`` refuses what could touch the shared broker, before starting anything.

These run the script only as far as its argument and port checks (no Java, no Kafka); the
cluster itself is exercised by tests/integration/test_cluster_faults.py.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

KAFKA_SH = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "kafka.sh"
OTHER_PORTS = ["21001", "21002", "21003", "21004", "21005"]


def kafka_sh(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSHT_KAFKA_")}
    return subprocess.run(
        ["bash", str(KAFKA_SH), *args], capture_output=True, text=True, env=env, timeout=30
    )


@pytest.mark.parametrize("shared", ["9092", "9093", "9094"])
@pytest.mark.parametrize("position", range(6))
def test_cluster_refuses_any_port_of_the_shared_broker(
    tmp_path: Path, shared: str, position: int
) -> None:
    ports = [*OTHER_PORTS]
    ports.insert(position, shared)
    result = kafka_sh("cluster-start", "--dir", str(tmp_path / "c"), "--ports", ",".join(ports))
    assert result.returncode == 1
    assert f"port {shared} belongs to the single broker" in result.stderr
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("ports", ["21001,21002,21003", "21001,21001,21002,21003,21004,21005"])
def test_cluster_needs_six_different_ports(tmp_path: Path, ports: str) -> None:
    result = kafka_sh("cluster-start", "--dir", str(tmp_path / "c"), "--ports", ports)
    assert result.returncode == 1
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("node", ["0", "4", "x", ""])
def test_only_nodes_one_to_three_can_be_killed(tmp_path: Path, node: str) -> None:
    result = kafka_sh("cluster-kill-node", *([node] if node else []), "--dir", str(tmp_path))
    assert result.returncode == 1
    assert "node must be 1, 2 or 3" in result.stderr


def test_commands_on_a_directory_without_a_cluster_say_so(tmp_path: Path) -> None:
    result = kafka_sh("cluster-kill-node", "1", "--dir", str(tmp_path))
    assert result.returncode == 1
    assert "no cluster in" in result.stderr


def test_wipe_refuses_a_directory_that_is_not_a_cluster(tmp_path: Path) -> None:
    keep = tmp_path / "precious.txt"
    keep.write_text("x")
    result = kafka_sh("cluster-wipe", "--dir", str(tmp_path))
    assert result.returncode == 1
    assert keep.exists()
