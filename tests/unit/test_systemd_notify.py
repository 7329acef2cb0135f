"""systemd readiness: READY=1 reaches NOTIFY_SOCKET once, when the process is first ready."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.observe.metrics import Health
from broker.observe.systemd import notify


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def _received(sock: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096))
        except BlockingIOError:
            return out


def test_without_notify_socket_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify("READY=1") is False


def test_ready_is_sent_to_the_notify_socket(notify_socket: socket.socket) -> None:
    assert notify("READY=1") is True
    assert _received(notify_socket) == [b"READY=1"]


def test_an_unreachable_socket_is_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "/nonexistent/notify.sock")
    assert notify("READY=1") is False


def test_health_tells_systemd_once_when_first_ready(notify_socket: socket.socket) -> None:
    health = Health()
    health.connected = True
    health.assigned = True
    assert _received(notify_socket) == []
    health.restored = True
    health.assigned = False
    health.assigned = True
    assert _received(notify_socket) == [b"READY=1"]
