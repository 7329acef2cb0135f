"""Apply a named view to a decoded payload, keeping the result valid under its schema.

A view selects fields by sensitivity tag or by path and removes, masks or seals them. How a
field is withheld depends on its schema type, so that the output always fits the schema the
recipient decodes with:

=====================  ===================  ====================
field                  removed              masked
=====================  ===================  ====================
optional (``null|T``)  ``None``             ``"[withheld]"`` if a string, else ``None``
required string        ``"[withheld]"``     ``"[withheld]"``
required array / map   ``[]`` / ``{}``      ``[]`` / ``{}``
required record        every child withheld the same way
anything else          cannot be withheld: the plan lists it as impossible
=====================  ===================  ====================

Sealed string fields are left in place and listed in :attr:`ViewPlan.sealed`; the router
encrypts them for the recipient with :func:`broker.crypto.sealing.seal_fields`.

:func:`plan_view` works on the schema alone (so a decision can say what a view removes before
any payload is touched); :func:`apply_view` carries the plan out on one payload.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

from broker.errors import PolicyDecisionError
from broker.events.fields import FieldInfo
from broker.policy.model import View

MASK = "[withheld]"
"""What a masked string reads as."""

IDENTITY = "identity"
"""The sensitivity tag of a field that identifies a person."""


class Op(StrEnum):
    """How one field is withheld."""

    NULL = "null"
    MASK = "mask"
    EMPTY_LIST = "empty_list"
    EMPTY_MAP = "empty_map"


@dataclass(frozen=True)
class Action:
    """Withhold one field path in one way; ``removed`` distinguishes removal from masking."""

    path: str
    op: Op
    removed: bool


@dataclass(frozen=True)
class ViewPlan:
    """What a view does to one payload schema."""

    actions: tuple[Action, ...]
    impossible: tuple[str, ...]
    """Selected paths no schema-valid value can hide (a required number, enum or boolean)."""
    covered: tuple[str, ...] = ()
    """The paths the view removes or masks; everything under each is withheld."""
    sealed: tuple[str, ...] = ()
    """String paths left in place for the caller to seal for the recipient
    (:func:`broker.crypto.sealing.seal_fields`); not withheld by :func:`apply_view`."""

    @property
    def removed(self) -> tuple[str, ...]:
        """Paths the view removes."""
        return tuple(a.path for a in self.actions if a.removed)

    @property
    def masked(self) -> tuple[str, ...]:
        """Paths the view masks."""
        return tuple(a.path for a in self.actions if not a.removed)


@dataclass(frozen=True)
class ViewResult:
    """A payload after a view: the new dict and the paths that actually held a value."""

    payload: dict[str, Any]
    removed: tuple[str, ...]
    masked: tuple[str, ...]


def without_tags(view: View, tags: Iterable[str]) -> View:
    """``view`` with ``tags`` added to what it removes (used by the guards)."""
    extra = [t for t in tags if t not in view.remove_tags]
    return view.model_copy(update={"remove_tags": [*view.remove_tags, *extra]})


_ViewKey = tuple[tuple[str, ...], ...]


def plan_view(view: View, fields: Sequence[FieldInfo]) -> ViewPlan:
    """Decide, from the schema alone, how ``view`` withholds each selected field.

    Depends only on the view and the schema, so plans are computed once per (view, schema)
    and reused: the router asks for one per partner per event.
    """
    key: _ViewKey = tuple(
        tuple(getattr(view, name))
        for name in (
            "remove_tags",
            "mask_tags",
            "seal_tags",
            "remove_fields",
            "mask_fields",
            "seal_fields",
            "remove_roles",
        )
    )
    return _plan(key, tuple(fields))


@lru_cache(maxsize=1024)
def _plan(key: _ViewKey, fields: tuple[FieldInfo, ...]) -> ViewPlan:
    remove_tags, mask_tags, seal_tags = set(key[0]), set(key[1]), set(key[2])
    view = _Selection(remove_fields=key[3], mask_fields=key[4], seal_fields=key[5])
    remove_roles = set(key[6])
    by_path = {f.path: f for f in fields}
    actions: list[Action] = []
    impossible: list[str] = []
    covered: list[str] = []
    sealed: list[str] = []
    for f in fields:
        if any(_under(f.path, c) for c in covered):
            continue
        remove = (
            bool(f.tags & remove_tags)
            or f.path in view.remove_fields
            or (f.role in remove_roles and f.path != f.person and _removable(f))
        )
        mask = not remove and (bool(f.tags & mask_tags) or f.path in view.mask_fields)
        seal = not (remove or mask) and (bool(f.tags & seal_tags) or f.path in view.seal_fields)
        if seal and f.kind == "string":
            sealed.append(f.path)
            continue
        if not (remove or mask or seal):
            continue
        covered.append(f.path)
        # A field that cannot hold a sealed string is removed instead: never left in clear.
        _withhold(f, remove or seal, by_path, actions, impossible)
    return ViewPlan(tuple(actions), tuple(impossible), tuple(covered), tuple(sealed))


@dataclass(frozen=True)
class _Selection:
    """The path lists of a view, as :func:`_plan` reads them."""

    remove_fields: tuple[str, ...]
    mask_fields: tuple[str, ...]
    seal_fields: tuple[str, ...]


def _removable(f: FieldInfo) -> bool:
    # A role removes the person's data, not the list that holds them: an array of people
    # is emptied (nothing of them is left), a required id or enum inside is left to that.
    return f.kind in ("string", "array", "map") or f.nullable


def _under(path: str, parent: str) -> bool:
    return path.startswith(parent) and path[len(parent) : len(parent) + 1] in (".", "[", "{")


def _withhold(
    f: FieldInfo,
    remove: bool,
    by_path: Mapping[str, FieldInfo],
    actions: list[Action],
    impossible: list[str],
) -> None:
    if f.kind == "string":
        actions.append(
            Action(f.path, Op.MASK if (f.nullable is False or not remove) else Op.NULL, remove)
        )
    elif f.nullable:
        actions.append(Action(f.path, Op.NULL, remove))
    elif f.kind == "array":
        actions.append(Action(f.path, Op.EMPTY_LIST, remove))
    elif f.kind == "map":
        actions.append(Action(f.path, Op.EMPTY_MAP, remove))
    elif f.kind == "record":
        children = [
            c
            for p, c in by_path.items()
            if p.startswith(f.path + ".") and "." not in p[len(f.path) + 1 :]
        ]
        for child in children:
            _withhold(child, remove, by_path, actions, impossible)
    else:
        impossible.append(f.path)


def protect(
    plan: ViewPlan,
    fields: Sequence[FieldInfo],
    persons: Sequence[tuple[str, str, str]],
    mixed: bool,
) -> tuple[ViewPlan, tuple[str, ...]]:
    """``plan`` with the personal data of each protected person withheld as well.

    ``persons`` holds ``(instance, container, role)`` of each person to protect
    (``("victims[1]", "victims[]", "victim")``; ``("", "", "victim")`` for a referral's own
    victim): every field of theirs with a sensitivity tag (identity, contact, linking,
    narrative, special) is withheld on that one item only, so the other people in the same
    list keep theirs. With ``mixed``, every tagged field about several people (``mixed``)
    is withheld too: it cannot be split, so the restrictive choice wins.

    Returns the new plan and the concrete paths it added.
    """
    by_path = {f.path: f for f in fields}
    actions = list(plan.actions)
    added: list[str] = []
    done_generic: list[tuple[str, str]] = []
    impossible = list(plan.impossible)
    for f in fields:
        if not f.tags or any(_under(f.path, c) or f.path == c for c in plan.covered):
            continue
        targets: list[str] = []
        if f.role == "mixed":
            if mixed:
                targets.append(f.path)
        else:
            for instance, container, role in persons:
                # An untyped field (a schema from before msht.person) is the record's own.
                person = f.person if f.person is not None else ""
                if person != container or (f.role is not None and f.role != role):
                    continue
                targets.append(instance + f.path[len(container) :] if container else f.path)
        for target in targets:
            if any(_under(target, d) for d, _ in done_generic):
                continue
            done_generic.append((target, f.path))
            start = len(actions)
            _withhold(f, True, by_path, actions, impossible)
            for i in range(start, len(actions)):
                a = actions[i]
                actions[i] = Action(target + a.path[len(f.path) :], a.op, a.removed)
            added.append(target)
    new = ViewPlan(
        tuple(actions),
        tuple(impossible),
        plan.covered + tuple(added),
        # A nulled value is not sealed; a masked one is sealed as the mask.
        plan.sealed,
    )
    return new, tuple(added)


def apply_view(payload: Mapping[str, Any], plan: ViewPlan) -> ViewResult:
    """A deep copy of ``payload`` with ``plan`` carried out.

    Raises :class:`PolicyDecisionError` when the plan lists a path it cannot withhold, so a
    caller can never deliver a view that leaves a selected field in place.
    """
    if plan.impossible:
        raise PolicyDecisionError(
            "view cannot withhold required field(s) " + ", ".join(plan.impossible)
        )
    out: dict[str, Any] = copy.deepcopy(dict(payload))
    removed: list[str] = []
    masked: list[str] = []
    for action in plan.actions:
        if _apply(out, _segments(action.path), action.op):
            (removed if action.removed else masked).append(action.path)
    return ViewResult(out, tuple(removed), tuple(masked))


def apply_view_sharing(
    payload: Mapping[str, Any], plan: ViewPlan, also: Iterable[str] = ()
) -> ViewResult:
    """:func:`apply_view` without the deep copy: the result shares untouched subtrees.

    Only the records, arrays and maps on the way to a path the plan withholds, or to one of
    ``also`` (paths in :mod:`broker.crypto.sealing` syntax that the caller will change in
    place, such as the fields it seals), are copied; every other value is the one in
    ``payload``. The result equals :func:`apply_view`'s, and changing a value at one of those
    paths in it (replacing ``container[key]``) leaves ``payload`` as it was. Anything else
    in the result must be treated as read-only. A path that cannot be parsed for sharing
    falls back to the deep copy, so ``payload`` is never changed.
    """
    if plan.impossible:
        raise PolicyDecisionError(
            "view cannot withhold required field(s) " + ", ".join(plan.impossible)
        )
    trie = _copy_trie(plan.actions, tuple(also))
    out: dict[str, Any] = (
        copy.deepcopy(dict(payload)) if trie is None else _copy_along(dict(payload), trie)
    )
    removed: list[str] = []
    masked: list[str] = []
    for action in plan.actions:
        if _apply(out, _segments(action.path), action.op):
            (removed if action.removed else masked).append(action.path)
    return ViewResult(out, tuple(removed), tuple(masked))


_Trie = dict[str, "_Trie"]
_SEAL_SEGMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)((?:\[\]|\{\})*)$")
_SEAL_MARKER = re.compile(r"\[\]|\{\}")


@lru_cache(maxsize=1024)
def _copy_trie(actions: tuple[Action, ...], also: tuple[str, ...]) -> _Trie | None:
    """The steps of every path ``actions`` and ``also`` change, merged into a tree.

    Computed once per (plan, paths): the same few plans serve every event. Actions are
    split exactly as :func:`_apply` splits them, so the copy covers each place it writes;
    ``also`` as :mod:`broker.crypto.sealing` parses its paths (``None`` if one does not
    parse: the caller then deep-copies).
    """
    root: _Trie = {}
    for steps in [_segments(a.path) for a in actions] + [_seal_steps(p) for p in also]:
        if steps is None:
            return None
        node = root
        for step in steps:
            node = node.setdefault(step, {})
    return root


def _seal_steps(path: str) -> tuple[str, ...] | None:
    steps: list[str] = []
    for part in path.split("."):
        match = _SEAL_SEGMENT.match(part)
        if match is None:
            return None
        steps.append(match.group(1))
        steps += _SEAL_MARKER.findall(match.group(2))
    return tuple(steps)


def _copy_along(node: Any, trie: _Trie) -> Any:
    """``node`` with every record, array and map on the way through ``trie`` copied once.

    Steps mean what :func:`_children` and :func:`_apply` make of them; a step that does not
    fit the node (a name in an array, an index past the end) copies nothing, as it changes
    nothing. A step's last value is shared: it is replaced, never changed in place.
    """
    if not trie:
        return node
    if isinstance(node, dict):
        out = dict(node)
        for step, sub in trie.items():
            if step == "{}":
                for key in list(out):
                    out[key] = _copy_along(out[key], sub)
            elif step.startswith("{"):
                key = step[1:-1]
                if key in out:
                    out[key] = _copy_along(out[key], sub)
            elif not step.startswith("[") and step in out:
                out[step] = _copy_along(out[step], sub)
        return out
    if isinstance(node, list):
        items = list(node)
        for step, sub in trie.items():
            if step == "[]":
                items = [_copy_along(v, sub) for v in items]
            elif step.startswith("[") and step[1:-1].isdigit():
                i = int(step[1:-1])
                if i < len(items):
                    items[i] = _copy_along(items[i], sub)
        return items
    return node


def carries_value(payload: Mapping[str, Any], path: str) -> bool:
    """Whether ``path`` holds a non-empty value anywhere in ``payload``."""
    return any(_present(v) for v in _values(payload, _segments(path)))


_STEP = re.compile(r"^(?P<name>[^\[{]*)(?P<step>\[\d*\]|\{[^}]*\})$")


@lru_cache(maxsize=4096)
def _segments(path: str) -> tuple[str, ...]:
    """``victims[1].person.forename`` -> ``victims``, ``[1]``, ``person``, ``forename``.

    ``[]`` and ``{}`` step into every item; ``[n]`` and ``{key}`` into one (a person).
    Cached: the same few paths are split for every event (the cache is bounded, since
    concrete paths such as ``victims[3]`` come from payloads)."""
    out: list[str] = []
    for part in path.split("."):
        match = _STEP.match(part)
        if match:
            out.append(match["name"])
            out.append(match["step"])
        elif part:
            out.append(part)
    return tuple(s for s in out if s)


def _is_step(segment: str) -> bool:
    return segment[:1] in ("[", "{")


def _children(node: Any, step: str) -> list[Any]:
    if step == "[]":
        return list(node) if isinstance(node, list) else []
    if step == "{}":
        return list(node.values()) if isinstance(node, dict) else []
    if step.startswith("[") and isinstance(node, list):
        i = int(step[1:-1])
        return [node[i]] if i < len(node) else []
    if step.startswith("{") and isinstance(node, dict):
        key = step[1:-1]
        return [node[key]] if key in node else []
    return []


def _values(node: Any, segs: Sequence[str]) -> list[Any]:
    if not segs:
        return [node]
    head, rest = segs[0], segs[1:]
    if _is_step(head):
        return [v for child in _children(node, head) for v in _values(child, rest)]
    if not isinstance(node, dict) or head not in node:
        return []
    return _values(node[head], rest)


def _present(value: Any) -> bool:
    return value not in (None, "", [], {}, MASK)


def _apply(node: Any, segs: Sequence[str], op: Op) -> bool:
    """Withhold the value at ``segs`` inside ``node``; report whether one was there."""
    head, rest = segs[0], segs[1:]
    if _is_step(head):
        if not rest:
            # An array item or map value of a record cannot be nulled in place (the schema
            # has no null there): the view fails closed rather than send it.
            raise PolicyDecisionError(
                f"view: a withheld path ends in {head!r}; it must end in a field of the item"
            )
        changed = False
        for child in _children(node, head):
            changed = _apply(child, rest, op) or changed
        return changed
    if not isinstance(node, dict) or head not in node:
        return False
    if rest:
        return _apply(node[head], rest, op)
    had = _present(node[head])
    node[head] = _replacement(op)
    return had


def _replacement(op: Op) -> Any:
    if op is Op.MASK:
        return MASK
    if op is Op.EMPTY_LIST:
        return []
    if op is Op.EMPTY_MAP:
        return {}
    return None
