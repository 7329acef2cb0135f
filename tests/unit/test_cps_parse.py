"""CPS case update XML: charging decisions and hearing outcomes are read safely and validated."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.cps.parse import parse_case_xml
from adapters.cps.render import render_case_xml
from adapters.police.parse import parse_case_json
from broker.errors import InputValidationError, UnsafeXmlError
from tests.unit.adapter_samples import sample


def test_charging_decision_is_read_from_the_case_xml() -> None:
    doc = parse_case_xml(sample("cps/charging-decision.xml"))
    assert doc.update == "charging_decision"
    assert doc.charging_decision is not None
    assert (doc.charging_decision.test, doc.charging_decision.outcome) == ("full_code", "charge")
    assert doc.monitoring_codes == ("HUTR", "VIVM")


def test_hearing_outcome_carries_plea_remand_and_court_codes() -> None:
    doc = parse_case_xml(sample("cps/hearing-outcome.xml"))
    outcome = doc.hearing_outcome
    assert outcome is not None
    assert (outcome.plea, outcome.remand, outcome.court_type) == ("NG", "PR", "MCA")


def test_bad_fields_are_named_by_their_xml_path() -> None:
    with pytest.raises(InputValidationError) as exc:
        parse_case_xml(sample("cps/charging-decision.bad.xml"))
    where = {p.location: p.reason for p in exc.value.problems}
    assert set(where) == {
        "URN",
        "ChargingDecision/Test",
        "ChargingDecision/Outcome",
        "ChargingDecision/DecidedOn",
    }
    assert where["ChargingDecision/DecidedOn"].startswith("must be a date in YYYY-MM-DD form")


def test_a_problem_inside_a_list_names_the_item() -> None:
    xml = render_case_xml(parse_case_json(sample("police/case-charge.json")))
    bad = xml.replace(b"<OffenceCode>MS15003C</OffenceCode>", b"<OffenceCode>TH68001</OffenceCode>")
    with pytest.raises(InputValidationError) as exc:
        parse_case_xml(bad)
    assert [p.location for p in exc.value.problems] == [
        "Defendants/Defendant[1]/Charges/Charge[2]/OffenceCode"
    ]


def test_an_unknown_element_is_refused_by_name() -> None:
    xml = sample("cps/charging-decision.xml").replace(
        b"<Prosecutor>", b"<Gossip>x</Gossip><Prosecutor>"
    )
    with pytest.raises(InputValidationError, match="Gossip"):
        parse_case_xml(xml)


def test_wrong_root_element_is_refused() -> None:
    with pytest.raises(InputValidationError, match="root element must be CaseUpdate"):
        parse_case_xml(b"<Referral/>")


def test_billion_laughs_entity_expansion_is_refused() -> None:
    with pytest.raises(UnsafeXmlError):
        parse_case_xml(sample("cps/billion-laughs.attack.xml"))


def test_external_entity_reading_a_local_file_is_refused() -> None:
    with pytest.raises(UnsafeXmlError):
        parse_case_xml(sample("cps/external-entity.attack.xml"))


def test_external_dtd_is_refused() -> None:
    with pytest.raises(UnsafeXmlError):
        parse_case_xml(sample("cps/external-dtd.attack.xml"))


def test_internal_entity_without_dtd_keyword_is_still_refused() -> None:
    xml = b'<!DOCTYPE x [<!ENTITY a "b">]><CaseUpdate>&a;</CaseUpdate>'
    with pytest.raises(UnsafeXmlError):
        parse_case_xml(xml)


def test_malformed_xml_is_an_input_error() -> None:
    with pytest.raises(InputValidationError, match="not well-formed XML"):
        parse_case_xml(b"<CaseUpdate><URN>01MP1234526</CaseUpdate>")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_case_xml_parser_only_raises_input_validation_errors_on_arbitrary_bytes(
    data: bytes,
) -> None:
    try:
        parse_case_xml(data)
    except InputValidationError:
        return


_TAGS = st.sampled_from(
    ["CaseUpdate", "Update", "URN", "Defendants", "Defendant", "Charges", "Charge", "Index",
     "OffenceCode", "Hearing", "Date", "MonitoringCodes", "Code", "X"]
)  # fmt: skip


@st.composite
def _xml_trees(draw: st.DrawFn, depth: int = 0) -> str:
    tag = draw(_TAGS)
    if depth > 3 or draw(st.booleans()):
        body = draw(
            st.text(
                alphabet=st.characters(codec="utf-8", exclude_characters="<&"),
                max_size=15,
            )
        )
    else:
        body = "".join(draw(st.lists(_xml_trees(depth + 1), max_size=4)))
    return f"<{tag}>{body}</{tag}>"


@settings(max_examples=200, deadline=None)
@given(_xml_trees())
def test_case_xml_parser_only_raises_input_validation_errors_on_arbitrary_trees(
    tree: str,
) -> None:
    try:
        parse_case_xml(f"<CaseUpdate>{tree}</CaseUpdate>".encode())
    except InputValidationError:
        return
