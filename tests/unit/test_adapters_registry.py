"""Format detection for ``--format auto`` and the choice of renderer per partner family."""

from __future__ import annotations

import pytest

from adapters.registry import (
    ADAPTERS,
    FAMILY_OF_PARTNER_KIND,
    detect_format,
    extension_for,
    renderer_for,
)
from broker.errors import InputValidationError
from broker.events.markings import PartnerKind
from tests.unit.adapter_samples import sample


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("police/nrm-referral.json", "nrm-json"),
        ("police/dtn-report.json", "dtn-json"),
        ("police/referrals.csv", "nrm-csv"),
        ("police/case-charge.json", "case-json"),
        ("cps/charging-decision.xml", "cps-xml"),
        ("overseas/alert-inbound.xml", "alert-xml"),
        ("overseas/diffusion-inbound.json", "alert-json"),
    ],
)
def test_each_sample_format_is_detected(name: str, fmt: str) -> None:
    assert detect_format(name, sample(name)) == fmt


def test_an_unrecognised_document_asks_for_a_format() -> None:
    with pytest.raises(InputValidationError, match="--format"):
        detect_format("notes.json", b'{"hello": "world"}')


@pytest.mark.parametrize(
    ("event_type", "family", "fmt"),
    [
        ("case.charge", "cps", "cps-xml"),
        ("case.charging_decision", "police", "case-json"),
        ("referral.dtn", "police", "dtn-json"),
        ("alert.outbound", "overseas", "alert-xml"),
        ("alert.inbound", None, "alert-xml"),
    ],
)
def test_the_partner_family_decides_the_default_format(
    event_type: str, family: str | None, fmt: str
) -> None:
    choice = renderer_for(event_type, None, family)
    assert choice is not None
    assert choice[1] == fmt


def test_a_preferred_format_is_used_only_where_it_fits() -> None:
    alert = renderer_for("alert.inbound", "alert-json", "overseas")
    case = renderer_for("case.charge", "alert-json", "cps")
    assert alert is not None
    assert case is not None
    assert (alert[1], case[1]) == ("alert-json", "cps-xml")


def test_an_unknown_event_type_has_no_renderer() -> None:
    assert renderer_for("case.unheard_of") is None


def test_a_document_two_families_claim_asks_for_a_format_naming_both() -> None:
    both = b'{"diffusion": {}, "update": "charge", "urn": "01AB2345678"}'
    with pytest.raises(InputValidationError, match="more than one format") as caught:
        detect_format("odd.json", both)
    assert "case-json or alert-json" in caught.value.problems[0].reason


def test_the_registry_is_built_from_the_adapters_own_extension_points() -> None:
    for adapter in ADAPTERS:
        for kind in adapter.partner_kinds:
            assert FAMILY_OF_PARTNER_KIND[kind] == adapter.family
        for fmt in adapter.render_formats:
            assert extension_for(fmt) == adapter.extension(fmt)
    assert extension_for("cps-xml") == "xml"
    assert extension_for("alert-json") == "json"


@pytest.mark.parametrize("kind", [k.value for k in PartnerKind])
def test_every_partner_kind_reads_some_family(kind: str) -> None:
    assert FAMILY_OF_PARTNER_KIND[kind] in {a.family for a in ADAPTERS}
