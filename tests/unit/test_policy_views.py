"""Views driven by sensitivity tags: what is removed or masked, and the output still fits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastavro import parse_schema
from fastavro.validation import validate

from broker.errors import PolicyDecisionError
from broker.events.fields import schema_fields
from broker.events.schemas import registry
from broker.policy.model import View, load_policy
from broker.policy.views import (
    MASK,
    Action,
    Op,
    ViewPlan,
    apply_view,
    apply_view_sharing,
    plan_view,
)
from tests.unit.event_samples import referral
from tests.unit.policy_support import FIELDS, IDENTITY_ONLY_SCHEMA, SCHEMA, payload

PARSED = parse_schema(SCHEMA)


def _fits(record: dict[str, Any]) -> bool:
    return bool(validate(record, PARSED, raise_errors=False))


def test_schema_fields_carry_their_sensitivity_tags() -> None:
    tags = {f.path: f.tags for f in FIELDS}
    assert tags["victim.forename"] == {"identity"}
    assert tags["victim.gender"] == frozenset()
    assert tags["narrative"] == {"operational"}


def test_removing_identity_tags_leaves_no_identifying_value() -> None:
    result = apply_view(payload(), plan_view(View(remove_tags=["identity"]), FIELDS))
    victim = result.payload["victim"]
    assert victim["surname"] is None
    assert victim["date_of_birth"] is None
    assert victim["aliases"] == []
    assert victim["forename"] == MASK
    assert set(result.removed) == {
        "victim.forename",
        "victim.surname",
        "victim.aliases",
        "victim.date_of_birth",
    }


def test_view_without_identity_keeps_the_non_identifying_facts() -> None:
    result = apply_view(payload(), plan_view(View(remove_tags=["identity"]), FIELDS))
    assert result.payload["victim"]["gender"] == "FEMALE"
    assert result.payload["victim"]["nationality"] == "AL"
    assert result.payload["exploitation_types"] == ["LABOUR"]


def test_view_output_still_fits_the_schema() -> None:
    view = View(remove_tags=["identity"], mask_tags=["operational"])
    assert _fits(payload())
    assert _fits(apply_view(payload(), plan_view(view, FIELDS)).payload)


def test_mask_tags_replace_strings_with_the_mask() -> None:
    result = apply_view(payload(), plan_view(View(mask_tags=["operational"]), FIELDS))
    assert result.payload["narrative"] == MASK
    assert result.masked == ("narrative",)
    assert result.removed == ()


def test_remove_fields_by_path() -> None:
    result = apply_view(payload(), plan_view(View(remove_fields=["victim.nationality"]), FIELDS))
    assert result.payload["victim"]["nationality"] is None
    assert result.payload["victim"]["forename"] == "Testa"


def test_view_does_not_change_the_original_payload() -> None:
    original = payload()
    apply_view(original, plan_view(View(remove_tags=["identity"]), FIELDS))
    assert original == payload()


def test_empty_fields_are_not_reported_as_withheld() -> None:
    result = apply_view(payload(surname=None), plan_view(View(remove_tags=["identity"]), FIELDS))
    assert "victim.surname" not in result.removed


def test_required_number_tagged_identity_cannot_be_withheld() -> None:
    plan = plan_view(View(remove_tags=["identity"]), schema_fields(IDENTITY_ONLY_SCHEMA))
    assert plan.impossible == ("passport_check_digit",)
    with pytest.raises(PolicyDecisionError, match="passport_check_digit"):
        apply_view({"case_ref": "C", "age_group": "adult", "passport_check_digit": 1}, plan)


def test_identity_inside_an_array_of_records_is_withheld_in_every_item() -> None:
    schema = {
        "type": "record",
        "name": "Alertish",
        "fields": [
            {
                "name": "persons",
                "type": {
                    "type": "array",
                    "items": {
                        "type": "record",
                        "name": "Person",
                        "fields": [
                            {"name": "name", "type": "string", "msht.sensitivity": "identity"},
                            {"name": "status", "type": "string"},
                        ],
                    },
                },
            }
        ],
    }
    body = {"persons": [{"name": "A", "status": "victim"}, {"name": "B", "status": "suspect"}]}
    result = apply_view(body, plan_view(View(remove_tags=["identity"]), schema_fields(schema)))
    assert [p["name"] for p in result.payload["persons"]] == [MASK, MASK]
    assert [p["status"] for p in result.payload["persons"]] == ["victim", "suspect"]
    assert result.removed == ("persons[].name",)
    assert validate(result.payload, parse_schema(schema), raise_errors=False)


def test_required_record_tagged_identity_is_withheld_field_by_field() -> None:
    schema = {
        "type": "record",
        "name": "Wrapper",
        "fields": [
            {
                "name": "who",
                "msht.sensitivity": "identity",
                "type": {
                    "type": "record",
                    "name": "Who",
                    "fields": [
                        {"name": "name", "type": "string"},
                        {"name": "dob", "type": ["null", "long"], "default": None},
                    ],
                },
            }
        ],
    }
    result = apply_view(
        {"who": {"name": "A", "dob": 5}},
        plan_view(View(remove_tags=["identity"]), schema_fields(schema)),
    )
    assert result.payload == {"who": {"name": MASK, "dob": None}}


def test_sealed_string_fields_are_listed_for_sealing_and_left_in_place() -> None:
    plan = plan_view(View(seal_tags=["identity"]), FIELDS)
    assert set(plan.sealed) == {"victim.forename", "victim.surname"}
    result = apply_view(payload(), plan)
    assert result.payload["victim"]["forename"] == "Testa"


def test_field_that_cannot_hold_a_sealed_string_is_removed_instead() -> None:
    plan = plan_view(View(seal_tags=["identity"]), FIELDS)
    result = apply_view(payload(), plan)
    assert result.payload["victim"]["date_of_birth"] is None
    assert result.payload["victim"]["aliases"] == []
    assert set(result.removed) == {"victim.date_of_birth", "victim.aliases"}


def test_guard_removal_overrides_sealing() -> None:
    plan = plan_view(View(seal_tags=["identity"], remove_tags=["identity"]), FIELDS)
    assert plan.sealed == ()


def test_the_shipped_support_view_gives_contact_and_needs_but_no_suspect_or_police_material() -> (
    None
):
    policy = load_policy(Path(__file__).resolve().parents[2] / "deploy" / "policy.yaml")
    view = policy.policy.views["support"]
    body = referral(
        consent=True,
        crime_reference="CR-1",
        duplicate_of="R-0",
        police_force="MPS",
        cooperates_with_police=True,
        account="the account",
        needs_support=True,
        language="vi",
        exploiters=[{"details": "the suspect", "in_uk": True}],
    )
    out = apply_view(body, plan_view(view, registry().fields("Referral"))).payload
    assert out["victim"]["surname"] == body["victim"]["surname"]
    assert out["needs_support"] is True
    assert out["language"] == "vi"
    for gone in ("crime_reference", "duplicate_of", "police_force", "cooperates_with_police"):
        assert out[gone] is None, gone
    assert out["account"] is None
    assert out["exploiters"] == []


@pytest.mark.parametrize(
    "path", ["exploitation_towns[0]", "exploitation_towns[]", "victim.aliases[1]"]
)
def test_a_withheld_path_ending_in_an_item_step_fails_the_view_closed(path: str) -> None:
    plan = ViewPlan((Action(path, Op.NULL, True),), ())
    for apply in (apply_view, apply_view_sharing):
        with pytest.raises(PolicyDecisionError, match="must end in a field"):
            apply(referral(), plan)
