"""The shape of a payload schema: every field path, its sensitivity tags, its type.

Views are driven by the schemas' sensitivity tags (``"msht.sensitivity": "identity"`` on a
field), so this module walks an Avro schema (as parsed JSON, named types resolved) and lists
each field with the tags it carries and whether it may be null, which is what decides how a
view can withhold it and still produce a record that fits the schema.

Paths are dotted; ``[]`` steps into array items and ``{}`` into map values
(``victims[].person.forename``). The schema catalogue (:mod:`broker.events.schemas`) is the only
caller that reads ``.avsc`` files; this module only walks a schema it is given.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from broker.errors import ConfigError

SENSITIVITY_ATTRIBUTE = "msht.sensitivity"
"""The custom Avro field attribute that carries a field's sensitivity tag(s)."""

PERSON_ATTRIBUTE = "msht.person"
"""The custom Avro field attribute saying whose data a field (and everything under it) is:
a role (``"victim"``), or ``{"role_from": "<sibling enum field>"}`` when each item of an array
says its own role (an alert's ``persons[].status``)."""

ROLES = frozenset({"victim", "suspect", "witness", "staff", "reporter", "mixed"})
"""Whose data a field is. ``suspect`` covers defendants, ``staff`` officers and other staff;
``mixed`` is a narrative or reference about several people that cannot be split."""

ROLE_ALIASES = {"defendant": "suspect", "officer": "staff"}
"""Other spellings accepted in ``msht.person`` and read as the role they name."""

KINDS = frozenset({"identity", "contact", "narrative", "linking", "special"})
"""What kind of personal data a field is: ``identity`` (names, dates of birth, document
numbers), ``contact`` (addresses, phones), ``narrative`` (free text about people),
``linking`` (a reference that finds the person in another record: crime reference, referral
id, Interpol reference) and ``special`` (special-category data: health, sexual exploitation).
The legacy tag ``staff`` is still read; the role says the same thing now."""

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
"""Avro's primitive type names."""


@dataclass(frozen=True)
class FieldInfo:
    """One field of a payload schema."""

    path: str
    tags: frozenset[str]
    nullable: bool
    kind: str
    """The non-null type: ``string``, ``array``, ``map``, ``record``, ``enum``, ``long`` ..."""
    item_kind: str | None = None
    """For arrays and maps: the kind of the items or values."""
    role: str | None = None
    """Whose data the field is (one of :data:`ROLES`), from the nearest ``msht.person``
    at or above it; ``None`` for a field about no person."""
    person: str | None = None
    """The path of the one person the field belongs to: the nearest array at or above the
    field that says whose data it is (``victims[]``), or ``""`` for the record itself (a
    referral's one victim). Items of that array are one person each."""
    role_from: str | None = None
    """When the role is read per item: the path of the enum field that holds it
    (``persons[].status``); :attr:`role` is then ``None``."""

    @property
    def kinds(self) -> frozenset[str]:
        """The kinds of personal data the field is (:data:`KINDS`) among its tags."""
        return self.tags & KINDS


def schema_fields(
    schema: Mapping[str, Any], named: Mapping[str, Any] | None = None
) -> tuple[FieldInfo, ...]:
    """Every field path of a record schema, outermost first.

    ``named`` maps full (and short) names of types defined elsewhere to their schemas, for
    schemas that reference shared records by name.
    """
    names: dict[str, Any] = dict(named or {})
    _collect_names(schema, names, schema.get("namespace"))
    return tuple(_walk_record(schema, "", names, schema.get("namespace"), (), _NOBODY))


@dataclass(frozen=True)
class _Whose:
    """The person context a walk carries down: role, person path, role-from path."""

    role: str | None
    person: str | None
    role_from: str | None


_NOBODY = _Whose(None, None, None)


def _whose(field: Mapping[str, Any], path: str, step: str, outer: _Whose) -> _Whose:
    """The person context of ``field``; ``step`` is ``[]``/``{}`` for an array or map of
    records (each item one person), else empty."""
    value = field.get(PERSON_ATTRIBUTE)
    if value is None:
        return outer
    person = f"{path}{step}" if step else (outer.person or "")
    if isinstance(value, Mapping) and isinstance(value.get("role_from"), str):
        return _Whose(None, person, f"{person}.{value['role_from']}")
    role = ROLE_ALIASES.get(str(value), str(value))
    if role not in ROLES:
        raise ConfigError(
            f"field {path}: {PERSON_ATTRIBUTE} {value!r} is not one of {sorted(ROLES)}"
        )
    return _Whose(role, person, None)


def _tags(field: Mapping[str, Any]) -> frozenset[str]:
    return tags_of(field.get(SENSITIVITY_ATTRIBUTE))


def tags_of(value: Any) -> frozenset[str]:
    """The sensitivity tags of an attribute value: one tag, a list of tags, or none."""
    if isinstance(value, str):
        return frozenset({value})
    if isinstance(value, list):
        return frozenset(str(v) for v in value)
    return frozenset()


def _full_name(schema: Mapping[str, Any], namespace: str | None) -> str:
    name = str(schema["name"])
    ns = schema.get("namespace", namespace)
    return name if "." in name or not ns else f"{ns}.{name}"


def _collect_names(schema: Any, out: dict[str, Any], namespace: str | None) -> None:
    """Register every named type (record, enum, fixed) under its full and short names."""
    if isinstance(schema, list):
        for branch in schema:
            _collect_names(branch, out, namespace)
        return
    if not isinstance(schema, dict):
        return
    kind = schema.get("type")
    if kind in ("record", "error", "enum", "fixed") and "name" in schema:
        full = _full_name(schema, namespace)
        # A later file (a newer version) with the same name replaces an earlier one.
        out[full] = schema
        out[full.rsplit(".", 1)[-1]] = schema
        namespace = full.rsplit(".", 1)[0] if "." in full else namespace
    if kind in ("record", "error"):
        for f in schema.get("fields", []):
            _collect_names(f.get("type"), out, namespace)
    elif kind == "array":
        _collect_names(schema.get("items"), out, namespace)
    elif kind == "map":
        _collect_names(schema.get("values"), out, namespace)
    elif isinstance(kind, (dict, list)):
        _collect_names(kind, out, namespace)


def _resolve(t: Any, names: Mapping[str, Any], namespace: str | None) -> Any:
    if isinstance(t, str) and t not in PRIMITIVES:
        found = names.get(t) or (names.get(f"{namespace}.{t}") if namespace else None)
        if found is None:
            raise ConfigError(f"schema references unknown type {t!r}")
        return found
    if isinstance(t, dict) and t.get("type") in PRIMITIVES and "logicalType" not in t:
        return t["type"]
    return t


def kind_of(t: Any) -> str:
    """The kind of an Avro type node: a primitive or named kind, ``union`` for a union."""
    if isinstance(t, str):
        return t
    if isinstance(t, list):
        return "union"
    kind = t.get("type")
    return kind if isinstance(kind, str) else "union"


def _walk_record(
    schema: Mapping[str, Any],
    prefix: str,
    names: Mapping[str, Any],
    namespace: str | None,
    stack: tuple[str, ...],
    outer: _Whose,
) -> Iterator[FieldInfo]:
    full = _full_name(schema, namespace)
    if full in stack:  # a recursive type: its fields were listed one level up
        return
    ns = full.rsplit(".", 1)[0] if "." in full else namespace
    for field in schema.get("fields", []):
        path = f"{prefix}{field['name']}"
        t = field["type"]
        nullable = False
        if isinstance(t, list):
            branches = [b for b in t if b != "null"]
            nullable = len(branches) < len(t)
            t = branches[0] if len(branches) == 1 else branches
        t = _resolve(t, names, ns)
        kind = kind_of(t)
        item_kind: str | None = None
        inner: Any = None
        step = ""
        if kind == "array":
            inner, step = _resolve(t["items"], names, ns), "[]"
        elif kind == "map":
            inner, step = _resolve(t["values"], names, ns), "{}"
        if inner is not None:
            item_kind = kind_of(inner)
        whose = _whose(field, path, step if item_kind == "record" else "", outer)
        yield FieldInfo(
            path, _tags(field), nullable, kind, item_kind, whose.role, whose.person, whose.role_from
        )
        if kind == "record":
            yield from _walk_record(t, f"{path}.", names, ns, (*stack, full), whose)
        elif item_kind == "record":
            yield from _walk_record(inner, f"{path}{step}.", names, ns, (*stack, full), whose)
