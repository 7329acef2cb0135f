"""A partner's subscriber for the benchmark, run as its own process.

``python -m benchmarks.partner --partner nca --expect 1000 --out times.tsv``

It reads the partner's delivery topic (settings from ``MSHT_*``), and hands every record to
:meth:`adapters.rendering.subscriber.Subscriber.handle` — the code ``msht subscribe`` runs: verify
every signature against the trust store, decode, open sealed fields with the partner's
X25519 key, render the native document (and write it, with ``--outbox``). The moment each
document is rendered is recorded, with the time its fetched batch arrived and the record's
Kafka timestamp (when the router produced it); at the end the process writes ``<event
id>\\t<rendered>\\t<received>\\t<produced>`` lines (unix seconds) to ``--out``, its CPU
after the warm-up to the same name with a ``.json`` suffix, and one summary line to stdout.

One difference from ``msht subscribe``: offsets are committed once per fetched batch, not
after every record, so the latency measured is the exchange's and not a commit round trip
per event (the benchmark group is thrown away afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from pathlib import Path

from adapters.exchange.signed import opener_from_settings
from adapters.rendering.subscriber import Subscriber
from broker.kafka import clients as kafka
from broker.logging import configure_logging
from broker.settings import Settings
from broker.types import PartnerId


async def run(
    partner: PartnerId,
    expect: int,
    out: Path,
    *,
    idle_timeout: float,
    warmup: int,
    outbox: Path | None,
    family: str,
) -> int:
    """Render until ``expect`` records were handled or none came for ``idle_timeout`` s."""
    settings = Settings()
    opener = opener_from_settings(settings, partner)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    times: list[tuple[str, float, float, float]] = []
    cpu_at_ready = time.process_time()
    handled_at_ready = 0
    topic = settings.delivery_topic(partner)
    group = f"bench-partner-{partner}-{time.time_ns()}"
    async with kafka.consumer(settings, topic, group_id=group) as consumer:
        sub = Subscriber(settings, partner, opener, consumer, family=family, outbox=outbox)
        last = time.monotonic()
        handled = 0
        announced = warmup == 0
        if announced:
            print(f"ready {partner}", flush=True)
        while not stop.is_set() and handled < expect:
            batches = await consumer.getmany(timeout_ms=200, max_records=500)
            if not batches:
                if time.monotonic() - last > idle_timeout:
                    break
                continue
            last = time.monotonic()
            received = time.time()
            for tp, records in batches.items():
                for record in records:
                    sub.handle(record.value, tp.topic, tp.partition, record.offset)
                    handled += 1
                    if sub.report.rendered:
                        # The record's Kafka timestamp is when the router produced it.
                        times.append(
                            (
                                sub.report.rendered[-1].event_id,
                                time.time(),
                                received,
                                record.timestamp / 1000,
                            )
                        )
                        # Keep ids and times only: the rendered bytes are not needed later.
                        sub.report.rendered.clear()
                await consumer.commit({tp: records[-1].offset + 1})
            if not announced and handled >= warmup:
                announced = True
                cpu_at_ready, handled_at_ready = time.process_time(), handled
                print(f"ready {partner}", flush=True)
        failed = len(sub.report.failed)
        cpu = time.process_time() - cpu_at_ready
    await asyncio.to_thread(
        out.write_text,
        "".join(f"{e}\t{at:.6f}\t{got:.6f}\t{ts:.3f}\n" for e, at, got, ts in times),
    )
    summary: dict[str, object] = {
        "partner": partner,
        "rendered": len(times),
        "failed": failed,
        # CPU of the whole process (fetching, verifying, opening, rendering, committing)
        # after the warm-up, per record handled after it.
        "cpu_seconds": cpu,
        "handled_after_warmup": handled - handled_at_ready,
    }
    await asyncio.to_thread(out.with_suffix(".json").write_text, json.dumps(summary))
    if failed:
        summary["first_failure"] = sub.report.failed[0].reason
    print(json.dumps(summary), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.partner", description=__doc__)
    parser.add_argument("--partner", required=True, help="partner id (its delivery topic)")
    parser.add_argument("--expect", type=int, required=True, help="stop after this many records")
    parser.add_argument("--out", type=Path, required=True, help="file for event id / time lines")
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=60.0,
        help="give up after this many seconds without a record",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=0,
        help='print "ready <partner>" once this many records were handled',
    )
    parser.add_argument("--outbox", type=Path, default=None, help="also write the documents")
    parser.add_argument("--family", default="police", help="renderer family (police JSON)")
    parser.add_argument("--log-level", default="INFO", help="as msht --log-level (default INFO)")
    args = parser.parse_args(argv)
    # Log as `msht subscribe` does (one JSON line per rendered document on stderr).
    configure_logging(args.log_level)
    return asyncio.run(
        run(
            PartnerId(args.partner),
            args.expect,
            args.out,
            idle_timeout=args.idle_timeout,
            warmup=args.warmup,
            outbox=args.outbox,
            family=args.family,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
