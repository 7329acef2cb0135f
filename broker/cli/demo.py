"""``msht demo``: a visible round trip through the local Kafka.

Creates a topic with a uuid in its name, produces a few records (idempotent, acks=all, SCRAM
login), reads them back with a ``read_committed`` consumer, prints each step and deletes the
topic again. Later issues grow this into the full exchange demo.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid

from broker import kafka
from broker.errors import TransportError
from broker.settings import Settings, load_settings

_RECORDS = (
    (b"case-0001", b"referral received"),
    (b"case-0001", b"case update: arrest"),
    (b"case-0002", b"referral received"),
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo`` command."""
    parser = sub.add_parser("demo", help="show a produce/consume round trip on the local Kafka")
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for Kafka (default: 30)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo; returns the exit code."""
    return asyncio.run(_demo(load_settings(), float(args.timeout)))


async def _demo(settings: Settings, wait_seconds: float) -> int:
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
