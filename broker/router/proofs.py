"""Which committed values a recipient's view withholds, from its view plan.

A view's proof gives the hash, never the salt, of every value the plan removes or masks
(docs/EVENTS.md, "Commitments"): the plan's action paths (``victims[].person.surname``,
``victims[1].person``, ``first_responder``) are matched against each value's concrete place.
A value under an action path is withheld whatever it held, so a null the original had and a
value the view removed look alike in the proof.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache

from broker.crypto.commitments import leaf_set, slot_places
from broker.events.paths import Step
from broker.events.schemas import SchemaVersion
from broker.policy.views import ViewPlan

_PART = re.compile(r"^(?P<name>[^\[{]+)(?P<steps>(?:\[\d*\]|\{[^}]*\})*)$")
_STEP = re.compile(r"\[\d*\]|\{[^}]*\}")

# One pattern step: ("field", name), ("index", None) for every item or ("index", n).
_Pattern = tuple[tuple[str, str | int | None], ...]


def _pattern(path: str) -> _Pattern:
    out: list[tuple[str, str | int | None]] = []
    for part in path.split("."):
        match = _PART.match(part)
        if match is None:
            out.append(("field", part))
            continue
        out.append(("field", match["name"]))
        for step in _STEP.findall(match["steps"]):
            inner = step[1:-1]
            if step[0] == "[":
                out.append(("index", int(inner) if inner else None))
            else:
                out.append(("field", inner if inner else None))
    return tuple(out)


def _covers(pattern: _Pattern, steps: Sequence[Step]) -> bool:
    if len(pattern) > len(steps):
        return False
    for (kind, want), (step_kind, value) in zip(pattern, steps, strict=False):
        if kind != step_kind or (want is not None and want != value):
            return False
    return True


@lru_cache(maxsize=1024)
def _patterns(paths: tuple[str, ...]) -> dict[str, tuple[_Pattern, ...]]:
    by_first: dict[str, list[_Pattern]] = {}
    for path in paths:
        pattern = _pattern(path)
        by_first.setdefault(str(pattern[0][1]), []).append(pattern)
    return {k: tuple(v) for k, v in by_first.items()}


def withheld_by(plan: ViewPlan) -> Callable[[Sequence[Step]], bool]:
    """Whether the value at a concrete place is removed or masked by ``plan``."""
    patterns = _patterns(tuple(a.path for a in plan.actions))

    def withheld(steps: Sequence[Step]) -> bool:
        if not steps:
            return False
        return any(_covers(p, steps) for p in patterns.get(str(steps[0][1]), ()))

    return withheld


_SLOTS: dict[tuple[tuple[str, ...], bytes], frozenset[int]] = {}
_MAX_CACHED = 1024


def withheld_slots(plan: ViewPlan, version: SchemaVersion) -> frozenset[int]:
    """The slots of ``version``'s leaf set whose place ``plan`` withholds (whether or not an
    event holds a value there): :func:`withheld_by` of every slot's place, worked out once
    per (plan, schema version) instead of for every value of every event."""
    key = (tuple(a.path for a in plan.actions), version.fingerprint)
    found = _SLOTS.get(key)
    if found is None:
        withheld = withheld_by(plan)
        places = slot_places(leaf_set(version))
        found = frozenset(slot for steps, slot in places.items() if withheld(steps))
        if len(_SLOTS) >= _MAX_CACHED:  # reloaded policies make new plans: stay bounded
            _SLOTS.clear()
        _SLOTS[key] = found
    return found
