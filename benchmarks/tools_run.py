"""The agencies' and auditors' commands of issue 19: ``msht publish`` and ``msht audit verify``.

* **publisher** — a bulk NRM export of N rows (``nrm-csv``, :func:`benchmarks.synthetic.
  write_referral_csv`) is published by the real ``msht publish --agency met-police`` in its
  own process, into a fresh exchange: validate, map, derive the id, seal the identity fields
  to the router, sign, produce (idempotent, ``acks=all``). Two rates: over the command's
  whole run (start-up included: imports, keys, the topic check, the producer's connection)
  and over the records it produced, from the first to the last broker append time (ingress
  topics carry ``LogAppendTime``).
* **audit verify** — the audit records a throughput run committed (one per referral,
  signed by the router) are written one per line, and ``msht audit verify --from-file
  --trust-store`` checks them: every digest, link, seq and signature. Timed in this process
  through the command's own handler (reading the file, checking, printing the table), so
  the rate is the verification's, not the interpreter's start-up; the command's wall time
  in its own process is recorded too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from benchmarks.exchange import POLICE, Keyring, create_exchange, drop_exchange
from benchmarks.router_run import RouterRunError
from benchmarks.synthetic import write_referral_csv
from broker.cli.audit import run_verify
from broker.kafka import clients as kafka
from broker.settings import Settings

Progress = Callable[[str], None]
_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class PublisherRun:
    """What one ``msht publish`` of a bulk CSV measured."""

    rows: int
    published: int
    csv_mb: float
    wall_seconds: float
    cpu_seconds: float
    """The command's CPU (user + system), start-up included."""
    events_per_second: float
    """Rows over the command's whole wall time."""
    produced_per_second: float
    """Records over the span of their broker append times (start-up left out)."""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


async def _append_times(settings: Settings, topic: str, partitions: int, count: int) -> list[float]:
    """The broker append times (s) of the first ``count`` records of ``topic``."""
    consumer = AIOKafkaConsumer(
        **kafka.client_kwargs(settings),
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    times: list[float] = []
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        deadline = time.monotonic() + 120
        while len(times) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=5_000)
            times.extend(rec.timestamp / 1000 for recs in batches.values() for rec in recs)
    finally:
        await consumer.stop()
    return times


def _run_logged(
    command: list[str], env: dict[str, str], workdir: Path
) -> tuple[float, float, int, str]:
    """Run ``command``; its wall seconds, CPU seconds (start-up included, from ``wait4``),
    exit code and output (into a file: ``msht publish`` logs a line per event)."""
    log = workdir / "publish.log"
    with log.open("wb") as handle:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=_ROOT
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text(errors="replace")
    return wall, usage.ru_utime + usage.ru_stime, process.returncode, text


async def publisher_run(
    base: Settings,
    keyring: Keyring,
    workdir: Path,
    rows: int,
    *,
    partitions: int,
    env: dict[str, str],
    progress: Progress,
) -> PublisherRun:
    """Write a ``rows``-row CSV and time ``msht publish`` on it into a fresh exchange."""
    path = write_referral_csv(workdir / f"export-{rows}.csv", rows, seed=7)
    exchange = await create_exchange(base, keyring, workdir, partitions=partitions)
    try:
        child_env = {k: v for k, v in env.items() if not k.startswith("MSHT_")}
        child_env.update(exchange.env())
        command = [
            str(Path(sys.executable).with_name("msht")),
            "publish",
            "--agency",
            POLICE,
            "--format",
            "nrm-csv",
            str(path),
        ]
        progress(f"publisher: msht publish of a {rows:,}-row CSV ({path.stat().st_size:,} bytes)")
        wall, cpu, code, out = await asyncio.to_thread(_run_logged, command, child_env, workdir)
        if code != 0:
            raise RouterRunError(f"msht publish exited {code}: {out[-2000:]}")
        found = re.search(r"published (\d+) event", out)
        published = int(found.group(1)) if found else 0
        times = await _append_times(exchange.settings, exchange.ingress, partitions, published)
        span = max(times) - min(times) if len(times) > 1 else 0.0
        return PublisherRun(
            rows=rows,
            published=published,
            csv_mb=path.stat().st_size / 1e6,
            wall_seconds=wall,
            cpu_seconds=cpu,
            events_per_second=rows / wall,
            produced_per_second=(len(times) - 1) / span if span > 0 else 0.0,
        )
    finally:
        await drop_exchange(exchange)


@dataclass(frozen=True)
class AuditVerifyRun:
    """What ``msht audit verify`` of N audit records measured."""

    records: int
    seconds: float
    """The command's handler in this process (file read, checks, table)."""
    records_per_second: float
    command_wall_seconds: float
    """The whole command in its own process, interpreter start-up included."""
    intact: bool

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def audit_verify_run(
    values: Sequence[bytes], keyring: Keyring, workdir: Path, *, env: dict[str, str]
) -> AuditVerifyRun:
    """Time ``msht audit verify --from-file --trust-store`` over ``values``."""
    path = workdir / "audit.jsonl"
    path.write_bytes(b"".join(value + b"\n" for value in values))
    args = argparse.Namespace(
        from_file=path,
        topic=None,
        timeout=120.0,
        trust_store=keyring.trust_path,
        heads=[],
        jobs=None,  # the operator's default: one process per CPU
    )
    sink = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(sink):
        code = run_verify(args)
    seconds = time.perf_counter() - started
    command = [
        str(Path(sys.executable).with_name("msht")),
        "audit",
        "verify",
        "--from-file",
        str(path),
        "--trust-store",
        str(keyring.trust_path),
    ]
    child_env = {k: v for k, v in env.items() if not k.startswith("MSHT_")}
    started = time.perf_counter()
    done = subprocess.run(command, env=child_env, capture_output=True, check=False)
    wall = time.perf_counter() - started
    return AuditVerifyRun(
        records=len(values),
        seconds=seconds,
        records_per_second=len(values) / seconds if seconds else 0.0,
        command_wall_seconds=wall,
        intact=code == 0 and done.returncode == 0,
    )
