"""Every sample's canonical payload fits its Avro schema, and survives Avro on the way back."""

from __future__ import annotations

from dataclasses import replace

import pytest

from adapters.registry import parser_for
from tests.unit.adapter_avro import avro_round_trip, markings_round_trip
from tests.unit.adapter_roundtrip import canonical, delivered
from tests.unit.adapter_samples import sample

CASES = [
    ("police/nrm-referral.json", "nrm-json"),
    ("police/nrm-referral-child.json", "nrm-json"),
    ("police/dtn-report.json", "dtn-json"),
    ("police/case-arrest.json", "case-json"),
    ("police/case-charge.json", "case-json"),
    ("police/case-file-submitted.json", "case-json"),
    ("cps/charging-decision.xml", "cps-xml"),
    ("cps/hearing-outcome.xml", "cps-xml"),
    ("overseas/alert-inbound.xml", "alert-xml"),
    ("overseas/diffusion-inbound.json", "alert-json"),
    ("overseas/diffusion-outbound.json", "alert-json"),
]


@pytest.mark.parametrize(("name", "fmt"), CASES)
def test_native_document_survives_avro_and_renders_back_unchanged(name: str, fmt: str) -> None:
    event = canonical(name, fmt)
    decoded = replace(
        delivered(event),
        payload=avro_round_trip(event.record_name, event.payload),
        markings=markings_round_trip(event.markings),
    )
    adapter = parser_for(fmt)
    rendered = adapter.render(decoded, fmt)
    original = adapter.parse(sample(name), fmt).accepted[0].document
    assert adapter.parse(rendered, fmt).accepted[0].document == original
