"""The benchmark's outputs: a plain-text table, a JSON file and a latency plot (PNG).

Everything reads one results dict (the JSON document), so the table and plot can be
re-made from a saved ``results.json`` without running the benchmark again.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.targets import target_lines


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True, cwd=Path(__file__).parent
        )
    except (OSError, subprocess.CalledProcessError):
        return ""
    return done.stdout.strip()


def machine_info() -> dict[str, Any]:
    """Cores, CPU model, RAM and software versions of this machine."""
    model = "unknown"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
                break
    from importlib.metadata import version

    return {
        "commit": _git("rev-parse", "--short", "HEAD"),
        "uncommitted_changes_in_broker_or_adapters": bool(
            _git("status", "--porcelain", "--", "broker", "adapters")
        ),
        "cores": os.cpu_count(),
        "cpu_model": model,
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "load_average_at_start": list(os.getloadavg()),
        "python": platform.python_version(),
        "aiokafka": version("aiokafka"),
        "fastavro": version("fastavro"),
        "cryptography": version("cryptography"),
        "kafka": os.environ.get("MSHT_KAFKA_VERSION", "4.4.0"),
    }


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _change(small: float, large: float) -> str:
    if small == 0:
        return "-"
    return f"{(large - small) / small * 100:+.0f}%"


def _compute_lines(compute: Mapping[str, Any]) -> list[str]:
    return [
        f"Compute ceiling (in-process CPU, {compute['events']:,} events, µs/event)",
        f"  verify {compute['verify_us']:.0f}  decode {compute['decode_us']:.0f}  "
        f"encode {compute['encode_us']:.0f}  sign {compute['sign_us']:.0f}  "
        f"= {compute['total_us']:.0f} µs -> {compute['events_per_core_second']:,.0f} events/s/core",
        f"  as routed to {compute['recipients']} views (1 verify + 1 decode + "
        f"{compute['recipients']} x (encode + sign)) = {compute['routed_us']:.0f} µs -> "
        f"{compute['routed_events_per_core_second']:,.0f} events/s/core",
    ]


def _io_lines(io: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = ["I/O ceiling (aiokafka consumer -> producer, no processing, same Kafka)"]
    for item in io:
        shape = f"1 in -> {item['fanout']} out" + (
            ", transactional" if item["transactional"] else ""
        )
        lines.append(
            f"  {shape:<32} {item['events_per_second']:>9,.0f} events/s "
            f"({item['events']:,} records in {item['seconds']:.1f} s)"
        )
    return lines


def _router_lines(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = [
        "Router (msht router subprocess, records pre-loaded, no subscriber running)",
        f"  {'events':>8}  {'sustained ev/s':>14}  {'CPU s/1000 ev':>13}  {'peak RSS MB':>11}"
        f"  {'CPU s':>7}  audit",
    ]
    for run in runs:
        lines.append(
            f"  {run['events']:>8,}  {run['sustained_events_per_second']:>14,.0f}  "
            f"{run['cpu_seconds_per_1000_events']:>13.2f}  {run['peak_rss_mb']:>11.1f}  "
            f"{run['cpu_seconds']:>7.1f}  {run['audit_kinds']}"
        )
    if len(runs) >= 2:
        a, b = runs[0], runs[-1]
        rate = _change(a["sustained_events_per_second"], b["sustained_events_per_second"])
        cpu = _change(a["cpu_seconds_per_1000_events"], b["cpu_seconds_per_1000_events"])
        rss = _change(a["peak_rss_mb"], b["peak_rss_mb"])
        lines.append(
            f"  change {a['events']:,} -> {b['events']:,}: throughput {rate}, "
            f"CPU/1000 {cpu}, peak RSS {rss}"
        )
    for run in runs:
        if run["rss_mb_at_records"]:
            points = ", ".join(f"{n:,}: {mb:.0f}" for n, mb in run["rss_mb_at_records"])
            lines.append(f"  RSS MB after N records ({run['events']:,} run): {points}")
    return lines


def _floor_lines(floor: Mapping[str, Any], cpu_ms: float | None) -> list[str]:
    lines = [
        f"Primitive floor (library calls alone, {floor['events']:,} events, CPU µs/referral, "
        f"{floor['views']} views, {floor['sealed_views']} sealed, "
        f"~{floor['sealed_bytes']:,.0f} sealed bytes)",
        f"  Ed25519 verify {floor['verify_us']:.0f} + sign x{floor['views']} "
        f"{floor['sign_us']:.0f} + X25519 x{1 + floor['sealed_views']} {floor['x25519_us']:.0f}"
        f" + AES-GCM {floor['aes_gcm_us']:.0f} + Avro decode {floor['decode_us']:.0f} + "
        f"encode x{floor['views']} {floor['encode_us']:.0f} = {floor['total_us']:.0f} µs",
    ]
    if cpu_ms is not None:
        lines.append(
            f"  router CPU per referral {cpu_ms * 1000:,.0f} µs = "
            f"{cpu_ms * 1000 / floor['total_us']:.2f} x the floor"
        )
    return lines


def _scaleout_lines(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = [
        "Scale-out (msht router processes in one consumer group, records pre-loaded)",
        f"  {'routers':>7}  {'partitions':>10}  {'events':>8}  {'sustained ev/s':>14}  "
        f"{'CPU s/1000 ev':>13}",
    ]
    for run in runs:
        lines.append(
            f"  {run['routers']:>7}  {run['partitions']:>10}  {run['events']:>8,}  "
            f"{run['sustained_events_per_second']:>14,.0f}  "
            f"{run['cpu_seconds_per_1000_events']:>13.2f}"
        )
    if len(runs) >= 2 and runs[0]["sustained_events_per_second"]:
        gain = runs[-1]["sustained_events_per_second"] / runs[0]["sustained_events_per_second"]
        lines.append(f"  {runs[-1]['routers']} routers / 1 router: {gain:.2f}x")
    return lines


def _stage_lines(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = ["Where the latency went (ms, every delivery; p50 / p99)"]
    for run in runs:
        stages = run.get("stages_ms") or {}
        if not stages:
            continue
        offered = _fmt(run["offered_rate"]) if run["offered_rate"] else "max"
        parts = "; ".join(
            f"{name} {lat['p50_ms']:.0f} / {lat['p99_ms']:.0f}" for name, lat in stages.items()
        )
        cpu = run.get("subscriber_cpu_ms_per_event") or {}
        sub = (
            "; subscriber CPU ms/event " + ", ".join(f"{p} {ms:.2f}" for p, ms in cpu.items())
            if cpu
            else ""
        )
        lines.append(f"  {offered:>5}/s: {parts}{sub}")
    return lines


def _tool_lines(results: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    pub = results.get("publisher")
    if pub:
        lines += [
            f"msht publish of a {pub['rows']:,}-row CSV ({pub['csv_mb']:.1f} MB): "
            f"{pub['published']:,} published in {pub['wall_seconds']:.1f} s wall "
            f"({pub['cpu_seconds']:.1f} CPU s, start-up included) = "
            f"{pub['events_per_second']:,.0f}/s; {pub['produced_per_second']:,.0f}/s "
            "between the first and last broker append",
        ]
    audit = results.get("audit_verify")
    if audit:
        lines.append(
            f"msht audit verify of {audit['records']:,} records (signatures checked): "
            f"{audit['seconds']:.2f} s in process = {audit['records_per_second']:,.0f} "
            f"records/s; the command in its own process {audit['command_wall_seconds']:.1f} s"
            + ("" if audit["intact"] else " (NOT INTACT: the run is suspect)")
        )
    sub = results.get("subscriber_cpu_ms")
    if sub is not None:
        lines.append(
            f"subscriber CPU per delivered event (mean of 3 partners at 100/s): {sub:.2f} ms"
        )
    return lines


def _fraction_lines(fractions: Mapping[str, float]) -> list[str]:
    lines = ["Router throughput as a fraction of each ceiling"]
    for name, value in fractions.items():
        lines.append(f"  {name:<52} {value * 100:>5.0f}%")
    return lines


def _latency_lines(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = [
        "End-to-end latency, publish -> rendered by the partner's subscriber (ms)",
        f"  {'offered/s':>9}  {'achieved/s':>10}  {'partner':<15} {'n':>7} {'p50':>8} {'p95':>8} "
        f"{'p99':>8} {'max':>8}  missing",
    ]
    for run in runs:
        offered = _fmt(run["offered_rate"]) if run["offered_rate"] else "max"
        for partner, lat in run["latency_ms"].items():
            lines.append(
                f"  {offered:>9}  {run['sustained_events_per_second']:>10,.0f}  {partner:<15} "
                f"{lat['count']:>7,} {lat['p50_ms']:>8.0f} {lat['p95_ms']:>8.0f} "
                f"{lat['p99_ms']:>8.0f} {lat['max_ms']:>8.0f}  {run['missing'].get(partner, '')}"
            )
    return lines


def render_table(results: Mapping[str, Any]) -> str:
    """The human-readable summary of a results dict."""
    m = results["machine"]
    lines = [
        f"Machine: {m['cores']} cores, {m['cpu_model']}, {m['ram_gb']} GB RAM, Kafka {m['kafka']},"
        f" Python {m['python']}, aiokafka {m['aiokafka']}, fastavro {m['fastavro']}, "
        f"cryptography {m['cryptography']}; load average at start "
        f"{', '.join(f'{x:.2f}' for x in m['load_average_at_start'])}; "
        f"commit {m.get('commit') or '?'}"
        + (
            " (+ uncommitted changes)" if m.get("uncommitted_changes_in_broker_or_adapters") else ""
        ),
        f"Referral: ~{results['plain_envelope_bytes']:,.0f} bytes of signed Avro in clear; as "
        f"published, with {results['ingress_fields_sealed_to_router']} identity fields sealed "
        f"to the router, ~{results['envelope_bytes']['mean']:,.0f} bytes "
        f"(min {results['envelope_bytes']['min']:,}, max {results['envelope_bytes']['max']:,})",
        "",
    ]
    lines += [*target_lines(results), ""]
    if "compute" in results:
        lines += _compute_lines(results["compute"])
        if "sealing" in results:
            seal = results["sealing"]
            lines.append(
                f"  not in the ceiling: open {seal['fields']} fields sealed to the router "
                f"{seal['open_us']:.0f} µs, seal the sealed view for one partner "
                f"{seal['seal_us']:.0f} µs"
            )
        lines.append(
            f"  not in the ceiling: the same encode with strict validation (as a publisher "
            f"encodes) {results['compute']['strict_encode_us']:.0f} µs"
        )
        lines.append("")
    if results.get("io"):
        lines += [*_io_lines(results["io"]), ""]
    router = results.get("router", {})
    if router.get("throughput"):
        window = results.get("parameters", {}).get("dedup_window")
        lines += [
            *_router_lines(router["throughput"]),
            f"  (router dedup window: {window:,} event ids per input partition)" if window else "",
            "",
        ]
    if results.get("floor"):
        throughput = router.get("throughput") or [{}]
        cpu_ms = throughput[0].get("cpu_seconds_per_1000_events")
        lines += [*_floor_lines(results["floor"], cpu_ms), ""]
    if router.get("scaleout"):
        lines += [*_scaleout_lines(router["scaleout"]), ""]
    if results.get("fractions"):
        lines += [*_fraction_lines(results["fractions"]), ""]
    if router.get("latency"):
        lines += [*_latency_lines(router["latency"]), ""]
        if any(run.get("stages_ms") for run in router["latency"]):
            lines += [*_stage_lines(router["latency"]), ""]
    tools = _tool_lines(results)
    if tools:
        lines += [*tools, ""]
    for error in results.get("errors", []):
        lines.append(f"NOT MEASURED: {error}")
    return "\n".join(lines).rstrip() + "\n"


def write_json(results: Mapping[str, Any], path: Path) -> None:
    """The results as indented JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


def plot_latency(results: Mapping[str, Any], path: Path) -> bool:
    """Latency percentiles (all partners) against offered load, as a PNG.

    Saturation is plotted at the rate the router achieved. Returns ``False`` (and writes
    nothing) when there is no latency run or matplotlib is not installed.
    """
    runs = [r for r in results.get("router", {}).get("latency", []) if "all" in r["latency_ms"]]
    if not runs:
        return False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fixed = sorted((r for r in runs if r["offered_rate"]), key=lambda r: r["offered_rate"])
    saturated = [r for r in runs if not r["offered_rate"]]
    keys = (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99"), ("max_ms", "max"))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, label in keys:
        line = ax.plot(
            [r["offered_rate"] for r in fixed],
            [r["latency_ms"]["all"][key] for r in fixed],
            marker="o",
            label=label,
        )
        # Saturation: plotted at the rate the router achieved, not joined to the line.
        ax.scatter(
            [r["sustained_events_per_second"] for r in saturated],
            [r["latency_ms"]["all"][key] for r in saturated],
            marker="x",
            s=60,
            color=line[0].get_color(),
        )
    for run in fixed:
        ax.annotate(
            f"{run['sustained_events_per_second']:.0f}/s routed",
            (run["offered_rate"], run["latency_ms"]["all"]["p50_ms"]),
            textcoords="offset points",
            xytext=(4, -12),
            fontsize=8,
        )
    for run in saturated:
        ax.annotate(
            "saturation (x)",
            (run["sustained_events_per_second"], run["latency_ms"]["all"]["max_ms"]),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=8,
        )
    ax.set_xscale("log")
    ax.set_xlabel("offered load, events/s (x: as fast as possible, at the rate achieved)")
    ax.set_ylabel("publish -> rendered latency (ms)")
    ax.set_yscale("log")
    ax.set_title("msht router: end-to-end latency, 3 partners (one sealed)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.report RESULTS.json``: print the table, redraw latency.png."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=main.__doc__)
    parser.add_argument("results", type=Path, help="a results.json written by the harness")
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text())
    print(render_table(results), end="")
    plot_latency(results, args.results.with_name("latency.png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
