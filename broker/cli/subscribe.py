"""``msht subscribe``: receive a partner's deliveries in its own native format.

Reads the partner's delivery topic (read_committed), verifies every signature against the
trust store and renders each event: case updates as CPS XML for a prosecutor, alerts as
UMF-like XML (or diffusion JSON) for a liaison point, referrals and case updates as JSON
for police. Files go to ``<outbox>/<partner>/<event id>.<ext>``; ``--stdout`` prints them.
Runs until Ctrl-C, or until ``--max`` events were handled. A delivery that fails
verification is reported and skipped; it never stops the subscriber.
With MSHT_METRICS_PORT set, serves Prometheus metrics and /healthz, /readyz on that port.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from adapters.exchange.seam import EventOpener
from adapters.registry import FAMILIES, FAMILY_OF_PARTNER_KIND, RENDER_FORMATS
from adapters.rendering.subscriber import Subscriber, SubscribeReport, TrustReload
from broker.errors import MshtError
from broker.observe import serving
from broker.observe.metrics import file_digest
from broker.settings import Settings, load_settings
from broker.types import PartnerId


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``subscribe`` sub-command."""
    p = sub.add_parser(
        "subscribe",
        help="render a partner's deliveries into its native format",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--partner", required=True, help="partner id whose delivery topic to read")
    p.add_argument(
        "--format",
        choices=sorted(RENDER_FORMATS),
        help="preferred output format (used for the events it can express)",
    )
    p.add_argument(
        "--family",
        choices=FAMILIES,
        help="the partner's format family (default: from its kind in the policy file)",
    )
    p.add_argument("--outbox", type=Path, help="outbox folder (default: <state_dir>/outbox)")
    p.add_argument("--stdout", action="store_true", help="print rendered documents")
    p.add_argument("--max", type=int, default=None, help="stop after N events")
    p.add_argument(
        "--evidence",
        type=Path,
        metavar="DIR",
        help="write, for each rendered document, DIR/<partner>/<event_id>.verification.json "
        "(originator, key id, commitment root, router signature, result) and the signed view "
        "<event_id>.view, which `msht verify` re-checks later",
    )
    p.add_argument(
        "--group", help="consumer group (default: the partner id, the one its ACLs allow)"
    )
    p.set_defaults(handler=run)


def partner_family(settings: Settings, partner: str) -> str | None:
    """The partner's format family from its kind in the policy file, if the file says."""
    from broker.policy import load_policy

    checkout = Path(__file__).resolve().parents[2]
    candidates = (
        [settings.policy_file]
        if settings.policy_file is not None
        else [Path("deploy/policy.yaml"), checkout / "deploy" / "policy.yaml"]
    )
    for path in candidates:
        try:
            loaded = load_policy(path)
        except (MshtError, OSError):
            continue
        for p in loaded.policy.partners:
            if p.id == partner:
                return FAMILY_OF_PARTNER_KIND.get(str(p.kind))
        return None
    return None


async def subscribe(
    settings: Settings,
    partner: PartnerId,
    opener: EventOpener,
    *,
    fmt: str | None,
    family: str | None,
    outbox: Path | None,
    to_stdout: bool,
    max_events: int | None,
    group: str | None = None,
    reopen: Callable[[], EventOpener] | None = None,
    evidence: Path | None = None,
) -> SubscribeReport:
    """Run a subscriber until ``max_events`` or SIGINT/SIGTERM; returns its report."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    reload = None
    if reopen is not None:
        # The trust store is re-read when it changes and on SIGHUP, between batches.
        wake = asyncio.Event()
        reload = TrustReload(settings.trust_store_path, reopen, wake)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, wake.set)
    with serving(settings, "subscriber") as metrics:
        metrics.set_loaded(partner=partner, trust_store=file_digest(settings.trust_store_path))
        async with Subscriber.open(
            settings, partner, opener, fmt=fmt, family=family, outbox=outbox,
            stdout=sys.stdout if to_stdout else None, group_id=group, reload=reload,
            evidence=evidence,
        ) as subscriber:  # fmt: skip
            subscriber.metrics = metrics
            await subscriber.run(max_events=max_events, stop=stop)
            return subscriber.report


def run(args: argparse.Namespace) -> int:
    """Handler of ``msht subscribe``."""
    # Imported here so `msht --help` works without the signing stack being importable.
    from adapters.exchange.signed import opener_from_settings

    settings = load_settings()
    outbox = args.outbox
    if outbox is None and not args.stdout:
        outbox = settings.state_dir / "outbox"
    family = args.family or partner_family(settings, args.partner)
    if family is None and args.format is None:
        print(
            f"msht: note: partner {args.partner!r} is not in the policy file; "
            "rendering each event in its default format (use --family or --format)",
            file=sys.stderr,
        )
    partner = PartnerId(args.partner)
    report = asyncio.run(
        subscribe(
            settings, partner, opener_from_settings(settings, partner),
            fmt=args.format, family=family, outbox=outbox, to_stdout=args.stdout,
            max_events=args.max, group=args.group,
            reopen=lambda: opener_from_settings(settings, partner), evidence=args.evidence,
        )
    )  # fmt: skip
    print(
        f"rendered {len(report.rendered)} event(s); failed {len(report.failed)}",
        file=sys.stderr,
    )
    for failed in report.failed:
        print(
            f"  failed: {failed.topic}[{failed.partition}]@{failed.offset}: {failed.reason}",
            file=sys.stderr,
        )
    return 1 if report.failed else 0
