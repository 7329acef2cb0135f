"""The payload bounds check names the same breach, at the same place, as it did before #19.

:func:`broker.router.limits.check_payload` now spells a node's path out only for a breach;
here it is compared with the previous construction (a path string per node) over arbitrary
payloads and tight bounds, so every kind of breach and the order they are found in is met.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from broker.crypto.sealing import is_sealed
from broker.router.limits import Breach, InputLimits, _over, check_payload


def _previous(limits: InputLimits, payload: Mapping[str, Any]) -> Breach | None:
    """check_payload as it was (commit 5887eb1)."""
    sealed = 0
    stack: list[tuple[Any, str, int]] = [(payload, "payload", 0)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, str):
            if len(node) > limits.string_chars:
                return _over("string-chars", f"{path} (characters)", len(node), limits.string_chars)
            if is_sealed(node):
                sealed += 1
                if sealed > limits.sealed_fields:
                    what = "the number of sealed values"
                    return _over("sealed-fields", what, sealed, limits.sealed_fields)
            continue
        if isinstance(node, Mapping | list):
            if depth + 1 > limits.nesting_depth:
                what = f"{path} (nesting depth)"
                return _over("nesting-depth", what, depth + 1, limits.nesting_depth)
            if len(node) > limits.array_items:
                what = f"{path} (items)" if isinstance(node, list) else f"{path} (members)"
                return _over("array-items", what, len(node), limits.array_items)
            if isinstance(node, Mapping):
                stack.extend((v, f"{path}.{k}", depth + 1) for k, v in node.items())
            else:
                stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(node))
    return None


strings = st.sampled_from(["", "abc", "abcdefgh", "msht-sealed:v2:x", "msht-sealed:v1:y"])
trees = st.recursive(
    st.none() | st.integers(0, 3) | strings,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), children, max_size=4)
    ),
    max_leaves=30,
)
bounds = st.builds(
    InputLimits,
    string_chars=st.integers(0, 10),
    array_items=st.integers(0, 4),
    nesting_depth=st.integers(1, 5),
    sealed_fields=st.integers(0, 3),
)


@settings(max_examples=500, deadline=None)
@given(payload=st.dictionaries(st.sampled_from(["a", "b", "c"]), trees, max_size=4), limits=bounds)
def test_the_breach_found_is_the_one_the_previous_check_found(
    payload: dict[str, Any], limits: InputLimits
) -> None:
    assert check_payload(limits, payload) == _previous(limits, payload)
