"""msht-broker benchmark harness (issues 7 and 19): every target of issue 19 next to the
figure measured for it, with the router's figures, the primitive floor and two ceilings.

Run ``python -m benchmarks.harness --help`` for the options; ``make bench`` runs every phase
with the defaults. See benchmarks/README.md for what each figure means and the figures
measured.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adapters.exchange.signed import EnvelopeSealer, sealer_from_settings
from benchmarks import inproc, report
from benchmarks.baselines import compute_ceiling, io_ceiling, sealing_cost
from benchmarks.exchange import (
    PARTNERS,
    POLICE,
    POLICY_FILE,
    ROUTER,
    SEALED_PARTNER,
    make_keyring,
)
from benchmarks.floor import primitive_floor
from benchmarks.load import Prepared
from benchmarks.router_run import WARMUP_EVENTS, RouterRun, latency_run, throughput_run
from benchmarks.synthetic import sealed_referrals
from benchmarks.tools_run import audit_verify_run, publisher_run
from broker.crypto.sealing import sealed_paths
from broker.errors import MshtError
from broker.events.envelope import decode_envelope, decode_payload
from broker.events.schemas import registry
from broker.kafka import clients as kafka
from broker.policy import load_policy
from broker.policy.views import plan_view
from broker.settings import Settings

PHASES = ("compute", "io", "throughput", "scaleout", "latency", "publisher", "audit")

DESCRIPTION = """\
Benchmark the msht router, publisher and audit verifier on the local Kafka; print each
target of issue 19 next to its figure, the primitive floor and two ceilings.

Phases (all run by default; pick some with --phases):
  compute     (a) compute ceiling: CPU µs per event of Ed25519 verify + Avro decode +
              Avro encode + Ed25519 sign of a ~2 KB referral, in this process, no Kafka;
              events/s per core. Also times, apart, the field sealing the router adds
              (opening fields sealed to it, sealing a view for a partner), and the
              primitive floor of issue 19: the library calls alone that routing one
              referral to 3 views (1 sealed) cannot avoid (benchmarks/floor.py).
  io          (b) I/O ceiling: aiokafka consumer -> producer pass-through of the very
              records the router reads (the referrals as published), on the same Kafka,
              no processing: 1:1, and in the router's shape (transactional, 4 records out
              per record in); events/s.
  throughput  (c) router throughput: N referrals signed by the police (met-police) are
              pre-loaded on an ingress topic, then `msht router` (a subprocess) routes them
              to three partners (nca full view, gmp without identity, salvation-army with
              identity sealed to its key). Sustained events/s after a 10 % warm-up, router
              CPU seconds per 1,000 events, peak RSS (VmHWM) - for --events and for
              --large-events, to show how they change with the number of events seen
              (the large run beyond the --dedup-window shows memory staying flat).
  scaleout    one and then two `msht router` processes in one consumer group over an
              ingress topic of --scaleout-partitions partitions, --events pre-loaded
              referrals each: sustained events/s and CPU s/1000 (both routers' CPU).
  latency     (c) end-to-end latency: the router and the three partners' subscribers run;
              referrals are published at each fixed rate of --rates and then as fast as
              possible (saturation); p50/p95/p99/max from publish to the partner's
              rendered document, where it went (router, commit + fetch, subscriber) and
              each subscriber's CPU per delivered event.
  publisher   `msht publish --agency met-police` of a --csv-rows bulk NRM CSV (validate,
              map, seal to the router, sign, produce) in its own process: rows/s.
  audit       `msht audit verify --from-file --trust-store` over the audit records of
              the first throughput (or scale-out) run: records/s.

Every run uses its own uniquely named topics (deleted afterwards), a temporary key
directory and trust store, and benchmarks/policy.yaml. Progress lines go to stderr; the
table goes to stdout and, with JSON and a PNG plot of latency against offered load, to
--out.
"""


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _rates(text: str) -> list[float]:
    try:
        rates = [float(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--rates {text!r}: comma-separated numbers") from exc
    if any(r <= 0 for r in rates):
        raise argparse.ArgumentTypeError(f"--rates {text!r}: every rate must be positive")
    return rates


def _phases(text: str) -> list[str]:
    phases = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in phases if p not in PHASES]
    if unknown:
        raise argparse.ArgumentTypeError(f"--phases: unknown {unknown}; choose from {PHASES}")
    return phases


def build_parser() -> argparse.ArgumentParser:
    """The harness's command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.harness",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--events",
        type=int,
        default=10_000,
        help="referrals per throughput run, saturation latency run and I/O ceiling (default 10000)",
    )
    parser.add_argument(
        "--large-events",
        type=int,
        default=None,
        help="a second throughput run this large, to compare CPU and memory with --events "
        "(default 3 x --events; 0 = skip)",
    )
    parser.add_argument(
        "--rates",
        type=_rates,
        default=[50.0, 100.0, 200.0, 500.0],
        help="fixed offered loads in events/s for the latency runs (default 50,100,200,500)",
    )
    parser.add_argument(
        "--latency-seconds",
        type=float,
        default=20.0,
        help="length of each fixed-rate latency run: rate x seconds referrals, at most "
        "--events (default 20)",
    )
    parser.add_argument(
        "--compute-events",
        type=int,
        default=5_000,
        help="events timed for the compute ceiling (default 5000, at most --events)",
    )
    parser.add_argument(
        "--partitions",
        type=int,
        default=1,
        help="partitions of the ingress and output topics (default 1)",
    )
    parser.add_argument(
        "--scaleout-partitions",
        type=int,
        default=4,
        help="partitions of the ingress topic in the scale-out phase (default 4)",
    )
    parser.add_argument(
        "--csv-rows",
        type=int,
        default=10_000,
        help="rows of the bulk CSV the publisher phase publishes (default 10000)",
    )
    parser.add_argument(
        "--dedup-window",
        type=int,
        default=None,
        help="event ids the router remembers per input partition (MSHT_DEDUP_WINDOW; default "
        "here: --events, so the --large-events run goes beyond it and shows the router's "
        "memory levelling off once the window is full; 0 = the router's own default, 100000)",
    )
    parser.add_argument(
        "--phases",
        type=_phases,
        default=list(PHASES),
        help=f"comma-separated subset of {','.join(PHASES)} (default: all)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also run the router under pyinstrument at saturation (--events referrals) and "
        "write router-profile.txt to --out (pyinstrument sees the event loop's thread; routing "
        "runs in a worker thread), and the router's in-process step breakdown and cProfile "
        "over up to 2,000 referrals to router-inproc.txt",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("benchmarks/results"),
        help="directory for results.json, results.txt, latency.png (default benchmarks/results)",
    )
    return parser


def _prepare(sealer: EnvelopeSealer, count: int) -> list[Prepared]:
    prepared: list[Prepared] = []
    started = time.monotonic()
    last = started
    for ready in sealed_referrals(sealer, count, seed=1):
        prepared.append(Prepared.of(ready, POLICE))
        if time.monotonic() - last >= 5:
            last = time.monotonic()
            _progress(f"sealed {len(prepared):,}/{count:,} referrals through the police adapter")
    _progress(f"sealed {count:,} referrals in {time.monotonic() - started:.1f} s")
    return prepared


def _subscriber_cpu(runs: list[RouterRun]) -> float | None:
    """Subscriber CPU ms per delivered event: the mean over partners of the 100/s run (or
    the lowest fixed rate measured), where no subscriber is queueing."""
    fixed = sorted((r for r in runs if r.offered_rate), key=lambda r: r.offered_rate or 0.0)
    chosen = next((r for r in fixed if r.offered_rate == 100.0), fixed[0] if fixed else None)
    if chosen is None or not chosen.subscriber_cpu_ms:
        return None
    return sum(chosen.subscriber_cpu_ms.values()) / len(chosen.subscriber_cpu_ms)


def _fractions(results: dict[str, Any], router_eps: float) -> dict[str, float]:
    fractions: dict[str, float] = {}
    compute = results.get("compute")
    if compute:
        fractions["of compute ceiling (verify+decode+encode+sign, 1 core)"] = (
            router_eps / compute["events_per_core_second"]
        )
        fractions[f"of compute ceiling as routed ({compute['recipients']} views, 1 core)"] = (
            router_eps / compute["routed_events_per_core_second"]
        )
    for item in results.get("io", []):
        shape = f"1->{item['fanout']}" + (" transactional" if item["transactional"] else "")
        fractions[f"of I/O ceiling ({shape})"] = router_eps / item["events_per_second"]
    return fractions


BENCH_CLOCK_SKEW_SECONDS = 6 * 3600
"""The benchmark exchange's ``MSHT_CLOCK_SKEW_SECONDS``: longer than a full run, since its
referrals are all signed at the start (production keeps the default five minutes)."""


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the chosen phases and return the results dict (see :mod:`benchmarks.report`)."""
    # Every referral is sealed and signed before the first phase, and a full run lasts well
    # over the router's default five-minute skew window: later phases would publish
    # referrals whose signatures the router (rightly) quarantines as out of its window. The
    # benchmark exchange widens the window so they route; the check still runs on each.
    settings = Settings(clock_skew_seconds=BENCH_CLOCK_SKEW_SECONDS)
    window = args.events if args.dedup_window is None else args.dedup_window
    if window:
        settings = settings.model_copy(update={"dedup_window": window})
    await kafka.wait_for_broker(settings, timeout=20)
    large = args.events * 3 if args.large_events is None else args.large_events
    sizes = sorted({args.events, *([large] if large else [])})
    latency_counts = [min(args.events, int(r * args.latency_seconds)) for r in args.rates]
    needed = args.events + WARMUP_EVENTS
    if "throughput" in args.phases:
        needed = max(needed, *sizes)
    results: dict[str, Any] = {
        "machine": report.machine_info(),
        "parameters": {
            "events": args.events,
            "large_events": large,
            "rates": args.rates,
            "latency_seconds": args.latency_seconds,
            "partitions": args.partitions,
            "scaleout_partitions": args.scaleout_partitions,
            "csv_rows": args.csv_rows,
            "dedup_window": settings.dedup_window,
            "phases": args.phases,
            "partners": list(PARTNERS),
        },
        "errors": [],
    }
    with tempfile.TemporaryDirectory(prefix="msht-bench-") as tmp:
        workdir = Path(tmp)
        keyring = make_keyring(workdir)
        _progress(f"sealing {needed:,} synthetic NRM referrals through the police adapter")
        # The publisher's own construction: with the router's X25519 key in the trust store
        # it seals the identity fields to the router, as `msht publish` does.
        sealer = sealer_from_settings(
            settings.model_copy(
                update={"key_dir": keyring.key_dir, "trust_store": keyring.trust_path}
            ),
            POLICE,
        )
        prepared = _prepare(sealer, needed)
        sample = decode_payload(decode_envelope(prepared[0].value))
        results["ingress_fields_sealed_to_router"] = len(sealed_paths(sample))
        plain = [r.envelope for r in sealed_referrals(EnvelopeSealer(keyring.police), 100)]
        results["plain_envelope_bytes"] = sum(map(len, plain)) / len(plain)
        sizes_b = [len(p.value) for p in prepared]
        results["envelope_bytes"] = {
            "mean": sum(sizes_b) / len(sizes_b),
            "min": min(sizes_b),
            "max": max(sizes_b),
        }

        if "compute" in args.phases:
            n = min(args.compute_events, args.events)
            _progress(f"(a) compute ceiling over {n:,} events")
            ceiling = compute_ceiling(
                [p.value for p in prepared[:n]], keyring.trust, keyring.router
            )
            results["compute"] = ceiling.as_dict(len(PARTNERS))
            if results["ingress_fields_sealed_to_router"]:
                view = load_policy(POLICY_FILE).policy.views["sealed-identity"]
                paths = plan_view(view, registry().fields("Referral")).sealed
                sealing = sealing_cost(
                    [p.value for p in prepared[: min(n, 1_000)]],
                    keyring.encryption[ROUTER].private_key,
                    SEALED_PARTNER,
                    keyring.encryption[SEALED_PARTNER].public_key,
                    paths,
                )
                results["sealing"] = sealing.as_dict()
            _progress(f"(a) primitive floor over {n:,} events")
            results["floor"] = primitive_floor(
                [p.value for p in prepared[:n]], views=len(PARTNERS), sealed_views=1
            ).as_dict()
        if "io" in args.phases:
            _progress(f"(b) I/O ceiling over {args.events:,} records")
            io = await io_ceiling(
                settings,
                [p.value for p in prepared[: args.events]],
                tag=uuid.uuid4().hex[:10],
                partitions=args.partitions,
                progress=_progress,
            )
            results["io"] = [item.as_dict() for item in io]

        throughput: list[RouterRun] = []
        latency: list[RouterRun] = []
        audit_values: list[bytes] = []
        results["router"] = {"throughput": [], "latency": [], "scaleout": []}
        if "throughput" in args.phases:
            for n in sizes:
                _progress(f"(c) router throughput over {n:,} referrals")
                try:
                    throughput.append(
                        await throughput_run(
                            settings,
                            keyring,
                            prepared[:n],
                            workdir,
                            partitions=args.partitions,
                            progress=_progress,
                            keep_audit=None if audit_values else audit_values,
                        )
                    )
                except MshtError as exc:
                    results["errors"].append(f"router throughput over {n:,}: {exc}")
                    _progress(f"FAILED: {exc}")
                    break
            results["router"]["throughput"] = [r.as_dict() for r in throughput]
        if "scaleout" in args.phases:
            scaled: list[RouterRun] = []
            for routers in (1, 2):
                _progress(
                    f"scale-out: {routers} router(s), {args.scaleout_partitions} partitions, "
                    f"{args.events:,} referrals"
                )
                try:
                    scaled.append(
                        await throughput_run(
                            settings,
                            keyring,
                            prepared[: args.events],
                            workdir,
                            partitions=args.scaleout_partitions,
                            progress=_progress,
                            routers=routers,
                            keep_audit=None if audit_values else audit_values,
                        )
                    )
                except MshtError as exc:
                    results["errors"].append(f"scale-out with {routers} routers: {exc}")
                    _progress(f"FAILED: {exc}")
            results["router"]["scaleout"] = [r.as_dict() for r in scaled]
        if "audit" in args.phases:
            if not audit_values:
                _progress(f"audit: a throughput run over {args.events:,} for its audit records")
                try:
                    await throughput_run(
                        settings,
                        keyring,
                        prepared[: args.events],
                        workdir,
                        partitions=args.partitions,
                        progress=_progress,
                        keep_audit=audit_values,
                    )
                except MshtError as exc:
                    results["errors"].append(f"audit verify: {exc}")
            if audit_values:
                _progress(f"audit: msht audit verify over {len(audit_values):,} records")
                results["audit_verify"] = audit_verify_run(
                    audit_values, keyring, workdir, env=dict(os.environ)
                ).as_dict()
        if "publisher" in args.phases:
            try:
                results["publisher"] = (
                    await publisher_run(
                        settings,
                        keyring,
                        workdir,
                        args.csv_rows,
                        partitions=args.partitions,
                        env=dict(os.environ),
                        progress=_progress,
                    )
                ).as_dict()
            except MshtError as exc:
                results["errors"].append(f"publisher: {exc}")
                _progress(f"FAILED: {exc}")
        if "latency" in args.phases:
            plan: list[tuple[float | None, int]] = [
                *zip(args.rates, latency_counts, strict=True),
                (None, args.events),
            ]
            for rate, n in plan:
                what = f"{rate:,.0f}/s" if rate else "saturation"
                _progress(f"(c) latency at {what}: {n:,} referrals")
                try:
                    latency.append(
                        await latency_run(
                            settings,
                            keyring,
                            prepared[:WARMUP_EVENTS],
                            prepared[WARMUP_EVENTS : WARMUP_EVENTS + n],
                            workdir,
                            rate=rate,
                            partitions=args.partitions,
                            progress=_progress,
                        )
                    )
                except MshtError as exc:
                    results["errors"].append(f"latency at {what}: {exc}")
                    _progress(f"FAILED: {exc}")
            results["router"]["latency"] = [r.as_dict() for r in latency]
            cpu = _subscriber_cpu(latency)
            if cpu is not None:
                results["subscriber_cpu_ms"] = cpu
        if args.profile:
            profile = args.out.resolve() / "router-profile.txt"
            profile.parent.mkdir(parents=True, exist_ok=True)
            _progress(f"profiling the router at saturation over {args.events:,} referrals")
            try:
                run_ = await throughput_run(
                    settings,
                    keyring,
                    prepared[: args.events],
                    workdir,
                    partitions=args.partitions,
                    progress=_progress,
                    profile=profile,
                )
                results["router"]["profiled"] = run_.as_dict()
            except MshtError as exc:
                results["errors"].append(f"profile: {exc}")
            # The routing work itself, step by step (pyinstrument does not see its thread).
            _progress("profiling the router's own work in-process (breakdown and cProfile)")
            try:
                inproc_text = inproc.report(min(args.events, 2000), breakdown=True, profile=True)
            except MshtError as exc:
                results["errors"].append(f"in-process profile: {exc}")
            else:
                (args.out.resolve() / "router-inproc.txt").write_text(inproc_text + "\n")
        if throughput:
            results["fractions"] = _fractions(results, throughput[0].sustained_eps)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run, print the table, write results.json, results.txt and latency.png."""
    args = build_parser().parse_args(argv)
    if args.events < 100:
        build_parser().error("--events must be at least 100")
    try:
        results = asyncio.run(run(args))
    except MshtError as exc:
        print(f"benchmark: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    table = report.render_table(results)
    print(table)
    out: Path = args.out
    report.write_json(results, out / "results.json")
    (out / "results.txt").write_text(table)
    plotted = report.plot_latency(results, out / "latency.png")
    _progress(
        f"wrote {out / 'results.json'}, {out / 'results.txt'}"
        + (f", {out / 'latency.png'}" if plotted else " (no latency plot)")
    )
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
