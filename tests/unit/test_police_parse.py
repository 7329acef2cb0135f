"""Police native input: NRM JSON, Duty to Notify, bulk CSV and case updates are validated."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.police.parse import (
    parse_case_json,
    parse_dtn_json,
    parse_nrm_csv,
    parse_nrm_json,
)
from broker.errors import InputValidationError
from tests.unit.adapter_samples import sample


def _nrm() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(sample("police/nrm-referral.json"))
    return doc


def _locations(exc: pytest.ExceptionInfo[InputValidationError]) -> dict[str, str]:
    return {p.location: p.reason for p in exc.value.problems}


def test_sample_nrm_referral_is_valid() -> None:
    doc = parse_nrm_json(sample("police/nrm-referral.json"))
    assert doc.identity.surname == "Alpha"
    assert doc.location.countries == ("RO", "GB")


def test_child_referral_needs_no_consent() -> None:
    doc = parse_nrm_json(sample("police/nrm-referral-child.json"))
    assert doc.age.now == "child"
    assert not doc.consent.wants_nrm


def test_every_bad_field_is_named_with_a_reason() -> None:
    with pytest.raises(InputValidationError) as exc:
        parse_nrm_json(sample("police/nrm-referral.bad.json"))
    problems = _locations(exc)
    assert (
        problems["identity.date_of_birth"] == "must be a date in YYYY-MM-DD form, e.g. 2026-03-01"
    )
    assert "UUID" in problems["routing.external_id"]
    assert "female" in problems["identity.gender"]
    assert "ISO 3166" in problems["identity.nationality"]


def test_missing_field_is_reported_as_required() -> None:
    doc = _nrm()
    del doc["identity"]["surname"]
    with pytest.raises(InputValidationError) as exc:
        parse_nrm_json(json.dumps(doc).encode())
    assert _locations(exc) == {"identity.surname": "is required but was not given"}


def test_unknown_field_is_refused_by_name() -> None:
    doc = _nrm()
    doc["identity"]["favourite_colour"] = "blue"
    with pytest.raises(InputValidationError) as exc:
        parse_nrm_json(json.dumps(doc).encode())
    assert "identity.favourite_colour" in _locations(exc)


def test_account_longer_than_the_form_allows_is_refused() -> None:
    doc = _nrm()
    doc["narrative"]["account"] = "x" * 15001
    with pytest.raises(InputValidationError) as exc:
        parse_nrm_json(json.dumps(doc).encode())
    assert _locations(exc)["narrative.account"] == "must be at most 15000 characters"


def test_adult_who_does_not_consent_cannot_be_referred_to_the_nrm() -> None:
    doc = _nrm()
    doc["consent"]["wants_nrm"] = False
    with pytest.raises(InputValidationError, match="Duty to Notify"):
        parse_nrm_json(json.dumps(doc).encode())


def test_json_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(InputValidationError, match="must be a JSON object"):
        parse_nrm_json(b"[1, 2]")


def test_anonymous_duty_to_notify_is_accepted() -> None:
    doc = parse_dtn_json(sample("police/dtn-report.json"))
    assert doc.identity.nationality == "VN"


def test_duty_to_notify_with_identifying_fields_is_refused_naming_each() -> None:
    with pytest.raises(InputValidationError) as exc:
        parse_dtn_json(sample("police/dtn-identifying.bad.json"))
    problems = _locations(exc)
    assert set(problems) == {
        "identity.forename",
        "identity.surname",
        "identity.date_of_birth",
        "location.addresses",
    }
    assert all("s.52(3)" in reason for reason in problems.values())


@pytest.mark.parametrize("key", ["forename", "contacts", "home_office_reference", "aliases"])
def test_duty_to_notify_refuses_an_identifying_field_even_when_empty(key: str) -> None:
    doc = json.loads(sample("police/dtn-report.json"))
    doc["identity"][key] = None
    with pytest.raises(InputValidationError, match=rf"identity\.{key}"):
        parse_dtn_json(json.dumps(doc).encode())


def test_csv_export_yields_one_referral_per_row() -> None:
    result = parse_nrm_csv(sample("police/referrals.csv"))
    assert [item.row for item in result.accepted] == [2, 3, 4, 5]
    assert result.rejected == ()


def test_csv_bad_rows_are_reported_by_row_and_column_and_good_rows_kept() -> None:
    result = parse_nrm_csv(sample("police/referrals-with-bad-rows.csv"))
    assert [item.row for item in result.accepted] == [2, 4]
    bad = {r.row: {p.location for p in r.error.problems} for r in result.rejected}
    assert bad == {3: {"exploitation", "date_of_birth", "nationality"}, 5: {"forename"}}


def test_csv_with_an_unknown_column_is_refused_whole() -> None:
    with pytest.raises(InputValidationError, match="shoe_size"):
        parse_nrm_csv(b"external_id,shoe_size\nx,42\n")


def test_csv_contact_problem_names_the_contact_column() -> None:
    rows = list(csv.reader(io.StringIO(sample("police/referrals.csv").decode())))
    header, cells = rows[0], rows[1]
    cells[header.index("phone_safe")] = "perhaps"
    out = io.StringIO()
    csv.writer(out).writerows([header, cells])
    result = parse_nrm_csv(out.getvalue().encode())
    assert [p.location for p in result.rejected[0].error.problems] == ["phone_safe"]


def test_case_updates_validate_urn_and_offence_codes() -> None:
    with pytest.raises(InputValidationError) as exc:
        parse_case_json(sample("police/case-bad-urn.bad.json"))
    problems = _locations(exc)
    assert "45EL1234525" in problems["urn"]
    assert "MS15001 to MS15007" in problems["defendants[0].charges[0].offence_code"]
    assert "time zone" in problems["occurred_at"]
    assert "SUM" in problems["defendants[0].charges[0].mode_of_trial"]


def test_conspiracy_suffix_is_accepted_on_offence_codes() -> None:
    doc = parse_case_json(sample("police/case-charge.json"))
    codes = [c.offence_code for d in doc.defendants for c in d.charges]
    assert codes == ["MS15002", "MS15003C"]


@pytest.mark.parametrize("urn", ["45EL1234525", "01MP1234526", "01AB0000100"])
def test_well_formed_urns_are_accepted(urn: str) -> None:
    doc = json.loads(sample("police/case-arrest.json"))
    doc["urn"] = urn
    assert parse_case_json(json.dumps(doc).encode()).urn == urn


@pytest.mark.parametrize("urn", ["45EL123452", "4XEL1234525", "45EL12345250", "45EL12A4525"])
def test_malformed_urns_are_refused(urn: str) -> None:
    doc = json.loads(sample("police/case-arrest.json"))
    doc["urn"] = urn
    with pytest.raises(InputValidationError, match="urn"):
        parse_case_json(json.dumps(doc).encode())


def test_file_submitted_must_include_the_mg3() -> None:
    doc = json.loads(sample("police/case-file-submitted.json"))
    doc["files"] = ["MG5"]
    with pytest.raises(InputValidationError, match="MG3"):
        parse_case_json(json.dumps(doc).encode())


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2000))
def test_police_parsers_only_raise_input_validation_errors_on_arbitrary_bytes(
    data: bytes,
) -> None:
    for parser in (parse_nrm_json, parse_dtn_json, parse_case_json, parse_nrm_csv):
        with contextlib.suppress(InputValidationError):
            parser(data)


@settings(max_examples=150, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_police_json_parsers_only_raise_input_validation_errors_on_arbitrary_json(
    value: object,
) -> None:
    data = json.dumps(value).encode()
    for parser in (parse_nrm_json, parse_dtn_json, parse_case_json):
        with contextlib.suppress(InputValidationError):
            parser(data)


@pytest.mark.parametrize("claim", [True, "yes", False, None])
def test_duty_to_notify_claiming_consent_is_refused_pointing_to_an_nrm_referral(
    claim: object,
) -> None:
    doc = json.loads(sample("police/dtn-report.json"))
    doc["consent"] = {"wants_nrm": claim}
    with pytest.raises(InputValidationError) as exc:
        parse_dtn_json(json.dumps(doc).encode())
    problems = _locations(exc)
    assert "consent" in problems
    assert "with consent, submit an NRM referral" in problems["consent"]
    assert "s.52(3)" in problems["consent"]


@pytest.mark.parametrize(
    "key", ["crime_reference", "duplicate_of", "pnc_id", "urn", "interpol_reference"]
)
def test_duty_to_notify_refuses_a_linking_reference(key: str) -> None:
    doc = json.loads(sample("police/dtn-report.json"))
    doc["police"][key] = "REF-1"
    with pytest.raises(InputValidationError, match=rf"police\.{key}"):
        parse_dtn_json(json.dumps(doc).encode())
