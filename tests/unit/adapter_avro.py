"""Avro round trips of canonical payloads through the project's codec (strict writing)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from broker.events import codec
from broker.events.schemas import registry


def avro_round_trip(record_name: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """``payload`` encoded strictly under the current ``record_name`` schema and decoded."""
    version = registry().current(record_name)
    return codec.decode_body(codec.encode_body(version, payload), version)


def markings_round_trip(markings: Mapping[str, Any]) -> dict[str, Any]:
    """The markings written strictly as a ``Markings`` record and read back."""
    return avro_round_trip("Markings", markings)
