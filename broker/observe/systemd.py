"""systemd's readiness protocol (``sd_notify``), so units can be ``Type=notify``.

systemd passes a datagram socket in ``NOTIFY_SOCKET``; a service writes ``READY=1`` to it
once it is doing its work. Without the variable (not run by systemd) nothing is sent. The
protocol is one datagram of ``KEY=VALUE`` lines, so no library is needed for it.
"""

from __future__ import annotations

import os
import socket


def notify(state: str, *, environ: dict[str, str] | None = None) -> bool:
    """Send ``state`` (e.g. ``READY=1``) to systemd; ``False`` when not run by systemd or
    the socket cannot be reached (readiness is then judged by the process running)."""
    address = (environ if environ is not None else dict(os.environ)).get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        # An abstract socket: its name starts with a NUL byte.
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode("utf-8"))
    except OSError:
        return False
    return True
