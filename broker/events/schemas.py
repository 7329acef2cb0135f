"""The event schemas: loaded once from the ``.avsc`` files, fingerprinted, tagged.

Files are named ``<Name>.v<N>.avsc`` and hold one named Avro type each (namespace
``org.msht.events``). A file may refer to a type defined in another file by its full name;
:func:`load_registry` inlines the referenced file (first use defines the type, later uses
are the bare name, as Avro requires) so every :class:`SchemaVersion` is self-contained.
A reference resolves to version 1 of the referenced type unless the referring file names
another with a top-level ``"msht.uses": {"org.msht.events.Person": 2}`` attribute, so
adding a version of a shared type never changes an existing schema's fingerprint.

Fingerprints follow the Avro specification: CRC-64-AVRO of the schema's Parsing Canonical
Form, which keeps only ``name``, ``type``, ``fields``, ``symbols``, ``items``, ``values``
and ``size`` — so ``logicalType`` is stripped and a ``timestamp-millis`` field's canonical
type is ``"long"`` (see docs/EVENTS.md for why).
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastavro

from broker.errors import ConfigError, UnknownSchemaError
from broker.events.fields import PRIMITIVES, FieldInfo, schema_fields

NAMESPACE = "org.msht.events"
"""The one Avro namespace of every event schema."""

USES_ATTRIBUTE = "msht.uses"
"""Top-level attribute pinning the version of a referenced shared type."""

EVENT_TYPES: Mapping[str, str] = {
    "referral.nrm": f"{NAMESPACE}.Referral",
    "referral.dtn": f"{NAMESPACE}.Referral",
    "case.arrest": f"{NAMESPACE}.CaseUpdate",
    "case.charge": f"{NAMESPACE}.CaseUpdate",
    "case.file_submitted": f"{NAMESPACE}.CaseUpdate",
    "case.charging_decision": f"{NAMESPACE}.CaseUpdate",
    "case.hearing_outcome": f"{NAMESPACE}.CaseUpdate",
    "alert.inbound": f"{NAMESPACE}.Alert",
    "alert.outbound": f"{NAMESPACE}.Alert",
}
"""Every event type the exchange carries and the full name of its payload record.

The one table of event types: the policy, the envelope and the router read it through
:class:`SchemaRegistry` (or :func:`payload_record_for`)."""

_NAMED = frozenset({"record", "error", "enum", "fixed"})
_FILE_NAME = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\.v(?P<version>[1-9][0-9]*)\.avsc$")


# --- Parsing Canonical Form and CRC-64-AVRO ------------------------------------------------

_CRC64_EMPTY = 0xC15D213AA4D7A795


def _crc64_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_CRC64_EMPTY & -(fp & 1))
        table.append(fp)
    return tuple(table)


_CRC64_TABLE = _crc64_table()


def crc64_avro(data: bytes) -> int:
    """The CRC-64-AVRO fingerprint of ``data`` as an unsigned 64-bit integer."""
    fp = _CRC64_EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _CRC64_TABLE[(fp ^ byte) & 0xFF]
    return fp


def _fullname(name: str, namespace: str | None) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def canonical_form(schema: Any) -> str:
    """The Avro Parsing Canonical Form of a schema given as parsed JSON.

    Rules applied, as the specification names them: PRIMITIVES, FULLNAMES, STRIP
    (``logicalType``, ``doc``, ``default``, ``aliases``, custom attributes all go), ORDER,
    STRINGS, INTEGERS, WHITESPACE. A named type seen before is written as its full name.
    """
    return _canonical(schema, None, set())


def _canonical(schema: Any, namespace: str | None, seen: set[str]) -> str:
    if isinstance(schema, str):
        if schema in PRIMITIVES:
            return json.dumps(schema)
        return json.dumps(_fullname(schema, namespace), ensure_ascii=False)
    if isinstance(schema, list):
        return "[" + ",".join(_canonical(b, namespace, seen) for b in schema) + "]"
    if not isinstance(schema, dict):
        raise ConfigError(f"not an Avro schema: {schema!r}")
    kind = schema.get("type")
    if not isinstance(kind, str) or kind in PRIMITIVES:
        if isinstance(kind, str):
            return json.dumps(kind)
        return _canonical(kind, namespace, seen)
    parts: list[str] = []
    if kind in _NAMED:
        name = _fullname(str(schema["name"]), schema.get("namespace", namespace))
        if name in seen:
            return json.dumps(name, ensure_ascii=False)
        seen.add(name)
        namespace = name.rsplit(".", 1)[0] if "." in name else None
        parts.append('"name":' + json.dumps(name, ensure_ascii=False))
    parts.append('"type":' + json.dumps(kind))
    if kind in ("record", "error"):
        fields = [
            "{"
            + '"name":'
            + json.dumps(f["name"], ensure_ascii=False)
            + ',"type":'
            + _canonical(f["type"], namespace, seen)
            + "}"
            for f in schema.get("fields", [])
        ]
        parts.append('"fields":[' + ",".join(fields) + "]")
    elif kind == "enum":
        parts.append(
            '"symbols":'
            + json.dumps(list(schema["symbols"]), ensure_ascii=False, separators=(",", ":"))
        )
    elif kind == "array":
        parts.append('"items":' + _canonical(schema["items"], namespace, seen))
    elif kind == "map":
        parts.append('"values":' + _canonical(schema["values"], namespace, seen))
    elif kind == "fixed":
        parts.append('"size":' + str(int(schema["size"])))
    return "{" + ",".join(parts) + "}"


def fingerprint(schema: Any) -> bytes:
    """The 8-byte little-endian CRC-64-AVRO fingerprint of a schema's canonical form."""
    return crc64_avro(canonical_form(schema).encode("utf-8")).to_bytes(8, "little")


# --- the registry ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SchemaVersion:
    """One version of one named type, self-contained and ready to read and write."""

    name: str
    """Full Avro name, e.g. ``org.msht.events.Referral``."""
    version: int
    schema: Mapping[str, Any] = field(repr=False)
    """The expanded schema (every referenced type inlined) as parsed JSON."""
    canonical_form: str = field(repr=False)
    fingerprint: bytes
    """CRC-64-AVRO of the canonical form, 8 bytes little-endian."""
    parsed: Any = field(repr=False, compare=False)
    """The schema as fastavro parsed it (for fastavro's readers and writers)."""

    @property
    def short_name(self) -> str:
        """The name without the namespace (``Referral``)."""
        return self.name.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class SchemaRegistry:
    """Every schema version found, by name and by fingerprint."""

    by_name: Mapping[str, tuple[SchemaVersion, ...]]
    by_fp: Mapping[bytes, SchemaVersion]
    _fields: dict[str, tuple[FieldInfo, ...]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def _full(self, name: str) -> str:
        full = _fullname(name, NAMESPACE)
        if full not in self.by_name:
            raise UnknownSchemaError(f"no schema named {name!r}")
        return full

    def names(self) -> tuple[str, ...]:
        """Full names of every type that has a file, sorted."""
        return tuple(sorted(self.by_name))

    def versions(self, name: str) -> tuple[SchemaVersion, ...]:
        """Every version of ``name`` (short or full), oldest first."""
        return self.by_name[self._full(name)]

    def current(self, name: str) -> SchemaVersion:
        """The newest version of ``name``: what this build writes and reads into."""
        return self.versions(name)[-1]

    def by_fingerprint(self, fingerprint: bytes) -> SchemaVersion:
        """The schema version with this 8-byte fingerprint."""
        try:
            return self.by_fp[bytes(fingerprint)]
        except KeyError:
            raise UnknownSchemaError(
                f"writer schema fingerprint {bytes(fingerprint).hex()} is not known to this build"
            ) from None

    def fields(self, name: str) -> tuple[FieldInfo, ...]:
        """Every field path of the current ``name`` with its sensitivity tags and kind.

        Paths are dotted; ``[]`` steps into array items and ``{}`` into map values
        (``victims[].person.surname``). This is what views, sealing and the policy read, so
        they always follow the schema events are encoded with.
        """
        full = self._full(name)
        found = self._fields.get(full)
        if found is None:
            found = schema_fields(self.current(full).schema)
            self._fields[full] = found
        return found

    def sensitive_paths(self, name: str) -> Mapping[str, frozenset[str]]:
        """Field path -> sensitivity tags, for every tagged field of the current ``name``."""
        return {f.path: f.tags for f in self.fields(name) if f.tags}

    def event_types(self) -> tuple[str, ...]:
        """Every event type the exchange carries, sorted."""
        return tuple(sorted(EVENT_TYPES))

    def payload_record(self, event_type: str) -> str:
        """Full name of the payload record ``event_type`` carries (``referral.nrm`` -> Referral)."""
        return payload_record_for(event_type)


class _Expander:
    """Inlines cross-file references so one file's type becomes a self-contained schema."""

    def __init__(self, raw: Mapping[str, Mapping[int, dict[str, Any]]]) -> None:
        self.raw = raw

    def expand(self, name: str, version: int) -> dict[str, Any]:
        doc = self.raw[name][version]
        uses = doc.get(USES_ATTRIBUTE) or {}
        if not isinstance(uses, dict):
            raise ConfigError(f"schema {name} v{version}: {USES_ATTRIBUTE} must be an object")
        defined: set[str] = set()
        result = self._node(doc, NAMESPACE, defined, {str(k): int(v) for k, v in uses.items()})
        result.pop(USES_ATTRIBUTE, None)
        return dict(result)

    def _node(self, node: Any, ns: str | None, defined: set[str], uses: dict[str, int]) -> Any:
        if isinstance(node, str):
            if node in PRIMITIVES:
                return node
            full = _fullname(node, ns)
            if full in defined:
                return full
            if full in self.raw:
                version = uses.get(full, 1)
                if version not in self.raw[full]:
                    raise ConfigError(f"schema reference {full} v{version}: no such file")
                return self._node(self.raw[full][version], NAMESPACE, defined, uses)
            raise ConfigError(f"schema reference {node!r}: no type of that name is defined")
        if isinstance(node, list):
            return [self._node(b, ns, defined, uses) for b in node]
        if not isinstance(node, dict):
            raise ConfigError(f"not an Avro schema node: {node!r}")
        out = {k: v for k, v in node.items() if k != USES_ATTRIBUTE}
        kind = node.get("type")
        if isinstance(kind, (dict, list)) or (isinstance(kind, str) and kind not in _NAMED):
            if kind in ("array",):
                out["items"] = self._node(node["items"], ns, defined, uses)
            elif kind == "map":
                out["values"] = self._node(node["values"], ns, defined, uses)
            elif not isinstance(kind, str):
                out["type"] = self._node(kind, ns, defined, uses)
            return out
        full = _fullname(str(node["name"]), node.get("namespace", ns))
        if full in defined:
            raise ConfigError(f"schema type {full} is defined twice")
        defined.add(full)
        # Full names in "name" make each inlined type independent of where it lands.
        out["name"] = full
        out.pop("namespace", None)
        inner_ns = full.rsplit(".", 1)[0]
        if kind in ("record", "error"):
            out["fields"] = [
                {**f, "type": self._node(f["type"], inner_ns, defined, uses)}
                for f in node.get("fields", [])
            ]
        return out


def _read_files(directory: Any) -> dict[str, dict[int, dict[str, Any]]]:
    raw: dict[str, dict[int, dict[str, Any]]] = {}
    for entry in sorted(directory.iterdir(), key=lambda p: p.name):
        match = _FILE_NAME.match(entry.name)
        if not match:
            continue
        try:
            doc = json.loads(entry.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"schema file {entry.name}: not readable JSON ({exc})") from exc
        if not isinstance(doc, dict) or doc.get("type") not in _NAMED:
            raise ConfigError(f"schema file {entry.name}: must hold one named type")
        full = _fullname(str(doc.get("name")), doc.get("namespace", NAMESPACE))
        if full.rsplit(".", 1)[-1] != match["name"]:
            raise ConfigError(f"schema file {entry.name}: defines {full}, not {match['name']}")
        if not full.startswith(f"{NAMESPACE}."):
            raise ConfigError(f"schema file {entry.name}: namespace must be {NAMESPACE}")
        raw.setdefault(full, {})[int(match["version"])] = doc
    return raw


def default_schema_dir() -> Any:
    """Where the schemas are: ``broker/_schemas`` in an installed wheel, else ``<repo>/schemas``."""
    try:
        packaged = importlib.resources.files("broker") / "_schemas"
        if packaged.is_dir():
            return packaged
    except (ModuleNotFoundError, OSError):
        pass
    return Path(__file__).resolve().parents[2] / "schemas"


def load_registry(directory: Path | None = None) -> SchemaRegistry:
    """Read, expand, parse and fingerprint every schema file in ``directory``.

    Raises :class:`ConfigError` naming the file for an unreadable or inconsistent schema.
    """
    source = directory if directory is not None else default_schema_dir()
    if not source.is_dir():
        raise ConfigError(f"schema directory {source} does not exist")
    raw = _read_files(source)
    expander = _Expander(raw)
    by_name: dict[str, tuple[SchemaVersion, ...]] = {}
    by_fp: dict[bytes, SchemaVersion] = {}
    for name in sorted(raw):
        versions = sorted(raw[name])
        if versions != list(range(1, len(versions) + 1)):
            raise ConfigError(f"schema {name}: versions {versions} are not 1..n without gaps")
        found = []
        for version in versions:
            expanded = expander.expand(name, version)
            try:
                parsed = fastavro.parse_schema(expanded, _force=True)
            except Exception as exc:  # fastavro raises several unrelated types here
                raise ConfigError(f"schema {name} v{version}: not valid Avro ({exc})") from exc
            canonical = canonical_form(expanded)
            sv = SchemaVersion(
                name=name,
                version=version,
                schema=expanded,
                canonical_form=canonical,
                fingerprint=crc64_avro(canonical.encode("utf-8")).to_bytes(8, "little"),
                parsed=parsed,
            )
            if sv.fingerprint in by_fp:
                other = by_fp[sv.fingerprint]
                raise ConfigError(
                    f"schema {name} v{version} has the same canonical form as "
                    f"{other.name} v{other.version}"
                )
            by_fp[sv.fingerprint] = sv
            found.append(sv)
        by_name[name] = tuple(found)
    return SchemaRegistry(by_name=by_name, by_fp=by_fp)


@functools.cache
def registry() -> SchemaRegistry:
    """The process-wide registry, parsed once from the installed schemas."""
    return load_registry()


def sensitive_paths(record_name: str) -> Mapping[str, frozenset[str]]:
    """Field path -> sensitivity tags of the current version of ``record_name``."""
    return registry().sensitive_paths(record_name)


def payload_record_for(event_type: str) -> str:
    """Full name of the payload record an event type carries (``referral.nrm`` -> Referral)."""
    try:
        return EVENT_TYPES[event_type]
    except KeyError:
        raise UnknownSchemaError(
            f"event_type {event_type!r} is not one of {', '.join(sorted(EVENT_TYPES))}"
        ) from None
