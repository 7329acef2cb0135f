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


def schema_fields(
    schema: Mapping[str, Any], named: Mapping[str, Any] | None = None
) -> tuple[FieldInfo, ...]:
    """Every field path of a record schema, outermost first.

    ``named`` maps full (and short) names of types defined elsewhere to their schemas, for
    schemas that reference shared records by name.
    """
    names: dict[str, Any] = dict(named or {})
    _collect_names(schema, names, schema.get("namespace"))
    return tuple(_walk_record(schema, "", names, schema.get("namespace"), ()))


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
        yield FieldInfo(path, _tags(field), nullable, kind, item_kind)
        if kind == "record":
            yield from _walk_record(t, f"{path}.", names, ns, (*stack, full))
        elif item_kind == "record":
            yield from _walk_record(inner, f"{path}{step}.", names, ns, (*stack, full))
