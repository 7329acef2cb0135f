"""``msht demo``: run the whole exchange once on the local Kafka and show who got what.

What it does, in one process:

1. Makes a demo folder (default ``<state_dir>/demo``, ``--dir``) holding fresh Ed25519 and
   X25519 keys for the router (``router: true``) and for every agency and partner of
   ``deploy/policy.yaml``, and the trust store listing their public halves.
2. Creates this run's topics, all named ``demo-<yyyymmddHHMMSS>-<hex>.*``: an ingress topic
   per publishing agency, ``deliver.<partner>`` per partner, the audit and the quarantine
   topic. Nothing of another run (or of a real exchange) is read or written.
3. Starts the router with ``deploy/policy.yaml``, and a subscriber per partner that renders
   its deliveries into ``<dir>/outbox/<partner>/`` in the partner's native format.
4. Acts the story with the agencies' own adapters: the Metropolitan Police sends NRM and
   Duty to Notify referrals, CSV exports (one with bad rows, which its adapter rejects) and
   case updates; the CPS, once the case updates are in its outbox as CPS XML, sends back a
   charging decision and a hearing outcome (and a malformed and a hostile XML file); the NCA
   sends a diffusion alert abroad, which the Dutch liaison point receives with identities
   (adequacy) and the third-country one does not (no transfer basis); the Dutch liaison
   point sends an alert marked SIENA H3, which is held for a human decision; a forged CPS
   charging decision signed with the police's key is quarantined.
5. Stops the router, verifies the audit chain with the router key from the trust store and
   prints the summary: per event and partner delivered (view) / withheld (rule, reason) /
   held, quarantined inputs, rejected input, the outbox files, the audit result.

Exit 0 when every input was decided, every granted delivery reached its partner's outbox,
the story's expectations held and the audit chain verified; 1 otherwise, listing what did
not happen; 2 when Kafka or the setup failed. Rejected input is kept under
``<dir>/rejected/<agency>/``. See docs/DEMO.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import uuid
from pathlib import Path

from rich.console import Console

from broker.errors import TransportError
from broker.kafka import clients as kafka
from broker.logging import configure_logging
from broker.settings import Settings, load_settings

_RECORDS = (
    (b"case-0001", b"referral received"),
    (b"case-0001", b"case update: arrest"),
    (b"case-0002", b"referral received"),
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo`` command."""
    parser = sub.add_parser(
        "demo",
        help="run the whole exchange end to end on the local Kafka, with a summary",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="demo folder for keys, trust store, outbox and rejected input "
        "(default: <state_dir>/demo; emptied and refilled each run, refused if it is a "
        "non-empty folder the demo did not make)",
    )
    parser.add_argument(
        "--cleanup", action="store_true", help="delete this run's topics when it ends"
    )
    parser.add_argument(
        "--purge",
        action="store_true",
        help="only delete the topics every earlier demo run left on Kafka, then exit",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=30.0,
        help="seconds to wait for the router and subscribers at each stage (default: 30)",
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for Kafka (default: 30)"
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also show the router's, publishers' and subscribers' own log lines",
    )
    parser.add_argument(
        "--check-kafka",
        action="store_true",
        help="only check Kafka: produce three records to a new topic, read them back, "
        "delete the topic",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo; returns the exit code."""
    # The demo only ever runs against the local development broker, as its admin.
    settings = load_settings(dev_run=True)
    if args.check_kafka:
        return asyncio.run(_round_trip(settings, float(args.timeout)))
    # The components log every event at INFO; the demo prints its own progress instead.
    if not args.verbose:
        configure_logging("ERROR")
    from broker.demo.runner import DemoOptions, purge, run_demo

    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        # Piped or logged: wide enough that the partner table keeps one line per cell.
        console = Console(highlight=False, width=160)
    if args.purge:
        return asyncio.run(purge(settings, console))
    options = DemoOptions(
        directory=args.dir or settings.state_dir / "demo",
        cleanup=args.cleanup,
        wait=float(args.wait),
        kafka_wait=float(args.timeout),
    )
    return asyncio.run(run_demo(settings, options, console))


async def _round_trip(settings: Settings, wait_seconds: float) -> int:
    """The Kafka check: a topic with a uuid in its name, three records there and back."""
    print(f"1. connecting to Kafka at {settings.bootstrap_servers} as {settings.username!r}")
    await kafka.wait_for_broker(settings, timeout=wait_seconds)
    topic = f"msht.demo-{uuid.uuid4().hex}"
    print(f"2. creating topic {topic}")
    await kafka.ensure_topics(settings, [topic])
    try:
        async with kafka.producer(settings) as producer:
            for key, value in _RECORDS:
                meta = await producer.send_and_wait(topic, value, key=key)
                print(f"3. produced  {key.decode()}: {value.decode()!r} (offset {meta.offset})")
        received = 0
        group = f"msht-demo-{uuid.uuid4().hex}"
        async with kafka.consumer(settings, topic, group_id=group) as consumer:
            while received < len(_RECORDS):
                try:
                    record = await asyncio.wait_for(consumer.getone(), wait_seconds)
                except TimeoutError as exc:
                    raise TransportError(
                        f"demo: only {received} of {len(_RECORDS)} records came back "
                        f"from {topic} within {wait_seconds:.0f}s"
                    ) from exc
                received += 1
                print(
                    f"4. consumed  {record.key.decode()}: {record.value.decode()!r} "
                    f"(offset {record.offset})"
                )
    finally:
        await kafka.delete_topics(settings, [topic])
        print(f"5. deleted topic {topic}")
    print(f"round trip complete: {received} records produced and consumed")
    return 0
