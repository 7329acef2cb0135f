"""Property tests: near-valid documents (one value changed anywhere) only ever fail cleanly.

Arbitrary bytes rarely get past the JSON or XML reader; these tests start from each valid
sample and replace one value deep inside it, so the validators themselves are exercised.
Whatever the change, a parser either returns a document or raises InputValidationError.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.cps.parse import parse_case_xml
from adapters.overseas.parse import parse_alert_json, parse_alert_xml
from adapters.police.parse import parse_case_json, parse_dtn_json, parse_nrm_csv, parse_nrm_json
from broker.errors import InputValidationError
from tests.unit.adapter_samples import sample

JSON_SAMPLES: list[tuple[str, Callable[[bytes], object]]] = [
    ("police/nrm-referral.json", parse_nrm_json),
    ("police/nrm-referral-child.json", parse_nrm_json),
    ("police/dtn-report.json", parse_dtn_json),
    ("police/case-charge.json", parse_case_json),
    ("overseas/diffusion-inbound.json", parse_alert_json),
]
XML_SAMPLES: list[tuple[str, Callable[[bytes], object]]] = [
    ("cps/charging-decision.xml", parse_case_xml),
    ("cps/hearing-outcome.xml", parse_case_xml),
    ("overseas/alert-inbound.xml", parse_alert_xml),
]

_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _replace(node: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    copy = dict(node) if isinstance(node, dict) else list(node)
    copy[head] = _replace(node[head], rest, value)
    return copy


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(JSON_SAMPLES), st.data(), _values)
def test_json_parsers_fail_only_with_input_validation_errors_on_one_changed_value(
    case: tuple[str, Callable[[bytes], object]], data: st.DataObject, value: Any
) -> None:
    name, parse = case
    doc = json.loads(sample(name))
    path = data.draw(st.sampled_from(_paths(doc)))
    mutated = json.dumps(_replace(doc, path, value)).encode()
    try:
        parse(mutated)
    except InputValidationError:
        return


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(XML_SAMPLES),
    st.data(),
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="<>&"), max_size=30),
)
def test_xml_parsers_fail_only_with_input_validation_errors_on_one_changed_text(
    case: tuple[str, Callable[[bytes], object]], data: st.DataObject, text: str
) -> None:
    name, parse = case
    original = sample(name).decode()
    pieces = original.split(">")
    index = data.draw(st.integers(min_value=1, max_value=len(pieces) - 1))
    head, _, tail = pieces[index].partition("<")
    pieces[index] = f"{text}<{tail}" if tail or head else pieces[index]
    try:
        parse(">".join(pieces).encode())
    except InputValidationError:
        return


@settings(max_examples=200, deadline=None)
@given(st.data(), st.text(alphabet=st.characters(codec="utf-8"), max_size=20))
def test_csv_parser_never_raises_for_a_changed_cell(data: st.DataObject, cell: str) -> None:
    lines = sample("police/referrals.csv").decode().splitlines()
    row = data.draw(st.integers(min_value=0, max_value=len(lines) - 1))
    cells = lines[row].split(",")
    col = data.draw(st.integers(min_value=0, max_value=len(cells) - 1))
    cells[col] = cell
    lines[row] = ",".join(cells)
    try:
        result = parse_nrm_csv("\n".join(lines).encode())
    except InputValidationError:
        return
    assert len(result.accepted) + len(result.rejected) >= 1
