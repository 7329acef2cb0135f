"""``msht router``: run the policy router until stopped.

Consumes every ingress topic (``<ingress_prefix>*``) as the consumer group
``MSHT_ROUTER_GROUP``, verifies each event, decides it with the policy, and commits the
recipients' countersigned views, one audit record and the input offset in one Kafka
transaction per input partition. Bad input is quarantined with its reason. Several
instances may run in the same group; partitions are shared between them.

With MSHT_METRICS_PORT set, serves Prometheus metrics on /metrics and /healthz, /readyz
(ready once connected, assigned and its state restored) on MSHT_METRICS_HOST (127.0.0.1).

Stop with Ctrl-C or SIGTERM: the batch in flight commits or aborts, then the router exits 0.
The policy file and the trust store are reloaded when they change and on SIGHUP, between
batches; one that does not validate is refused (logged) and the one in force stays.
Needs: the trust store with the router agency marked `router: true`, the router's Ed25519
and X25519 keys in the key directory, and the topics created by `msht provision`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
from datetime import UTC, datetime
from pathlib import Path

from broker.errors import ConfigError
from broker.observe import serving
from broker.policy import load_checked_policy
from broker.settings import Settings, load_settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``router`` sub-command."""
    p = sub.add_parser(
        "router",
        help="run the policy router (ingress -> partners' delivery topics)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--policy",
        type=Path,
        help="policy file (default: MSHT_POLICY_FILE, else deploy/policy.yaml of the checkout)",
    )
    p.add_argument(
        "--instance",
        help="this instance's name in audit records (default: <host>-<pid>)",
    )
    p.add_argument(
        "--progress-every",
        type=float,
        default=10.0,
        help="seconds between progress log lines (default: 10)",
    )
    p.set_defaults(handler=run)


def policy_path(settings: Settings, given: Path | None) -> Path:
    """The policy file to use: the option, then the setting, then the checkout's example."""
    if given is not None:
        return given
    if settings.policy_file is not None:
        return settings.policy_file
    fallback = Path(__file__).resolve().parents[2] / "deploy" / "policy.yaml"
    if fallback.exists():
        return fallback
    raise ConfigError("policy_file: no policy given (use --policy or MSHT_POLICY_FILE)")


async def _serve(settings: Settings, path: Path, instance: str, every: float) -> int:
    from broker.router.service import run_router

    policy = load_checked_policy(path, datetime.now(UTC))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    reload_now = asyncio.Event()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGHUP, reload_now.set)
    with serving(settings, "router") as metrics:
        await run_router(
            settings,
            policy,
            instance=instance,
            stop=stop,
            progress_every=every,
            metrics=metrics,
            reload_now=reload_now,
        )
    return 0


def run(args: argparse.Namespace) -> int:
    """Handler of ``msht router``."""
    settings = load_settings()
    path = policy_path(settings, args.policy)
    instance = args.instance or f"{socket.gethostname()}-{os.getpid()}"
    return asyncio.run(_serve(settings, path, instance, args.progress_every))
