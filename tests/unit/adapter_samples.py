"""Paths of the sample native documents under deploy/examples, for the adapter tests."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "examples"


def sample(name: str) -> bytes:
    """The bytes of ``deploy/examples/<name>``."""
    return (EXAMPLES / name).read_bytes()
