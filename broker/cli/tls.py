"""``msht tls generate``: the CA and broker certificate for Kafka's SASL_SSL listener."""

from __future__ import annotations

import argparse
from pathlib import Path

from broker.crypto.tls import (
    DEFAULT_HOSTNAMES,
    DEFAULT_IP_ADDRESSES,
    TlsFiles,
    kafka_listener_properties,
    problems,
    write_tls_files,
)
from broker.settings import load_settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``tls`` command and its ``generate`` sub-command."""
    parser = sub.add_parser("tls", help="certificates for the broker's TLS listener")
    actions = parser.add_subparsers(dest="tls_command", metavar="ACTION", required=True)

    gen = actions.add_parser(
        "generate",
        help="make (or keep, if still sound) a CA and a broker certificate",
        description=(
            "Writes ca.pem, ca.key.pem, broker.pem, broker.key.pem, broker.keystore.pem, "
            "broker.p12 and broker.p12.password into --out. Files that are still sound are "
            "kept; a broker certificate that lacks a name or nears expiry is reissued by the "
            "same CA."
        ),
    )
    gen.add_argument(
        "--out", type=Path, default=None, help="directory (default: <MSHT_STATE_DIR>/tls)"
    )
    gen.add_argument(
        "--host",
        dest="hosts",
        action="append",
        default=None,
        help=f"DNS name for the certificate; repeatable (default: {', '.join(DEFAULT_HOSTNAMES)})",
    )
    gen.add_argument(
        "--ip",
        dest="ips",
        action="append",
        default=None,
        help=f"IP address; repeatable (default: {', '.join(DEFAULT_IP_ADDRESSES)})",
    )
    gen.add_argument("--force", action="store_true", help="replace everything, CA included")
    gen.add_argument(
        "--listener", default="SASL_SSL", help="listener name for the printed broker properties"
    )
    gen.set_defaults(handler=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    """Write or keep the files, then print them and the broker properties that use them."""
    out: Path = args.out or load_settings(principal=False).state_dir / "tls"
    hosts = tuple(args.hosts) if args.hosts else DEFAULT_HOSTNAMES
    ips = tuple(args.ips) if args.ips else DEFAULT_IP_ADDRESSES
    reasons = problems(TlsFiles(out), hostnames=hosts, ip_addresses=ips)
    files, wrote = write_tls_files(out, hostnames=hosts, ip_addresses=ips, force=args.force)
    if wrote:
        shown = "; ".join(reasons[:3]) + ("; ..." if len(reasons) > 3 else "")
        why = "forced" if args.force else shown
        print(f"wrote TLS files in {files.directory} ({why})")
    else:
        print(f"TLS files in {files.directory} are sound; kept them")
    for path in files.all_paths():
        print(f"  {path}")
    print("broker properties:")
    for key, value in kafka_listener_properties(files, args.listener).items():
        print(f"  {key}={value}")
    print(f"clients: MSHT_SECURITY_PROTOCOL=SASL_SSL MSHT_SSL_CAFILE={files.ca_cert.resolve()}")
    return 0
