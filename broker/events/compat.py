"""BACKWARD_TRANSITIVE compatibility: every version can read data written by every earlier one.

The rules are Avro's schema resolution rules, checked statically: a reader field missing
from the writer needs a default; types must match or promote (int -> long/float/double,
long -> float/double, float -> double, string <-> bytes); enum symbols the writer may send
must exist in the reader (or the reader has a default); a writer union branch must resolve
against the reader; named types must keep their name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from broker.events.fields import PRIMITIVES, kind_of
from broker.events.schemas import SchemaRegistry, SchemaVersion

_PROMOTIONS = {
    "int": {"long", "float", "double"},
    "long": {"float", "double"},
    "float": {"double"},
    "string": {"bytes"},
    "bytes": {"string"},
}


@dataclass(frozen=True)
class Incompatibility:
    """One break: which versions, which field, why."""

    record: str
    reader_version: int
    writer_version: int
    field: str
    reason: str

    def __str__(self) -> str:
        return (
            f"{self.record} v{self.reader_version} cannot read v{self.writer_version}: "
            f"{self.field}: {self.reason}"
        )


class _Checker:
    def __init__(self, reader: SchemaVersion, writer: SchemaVersion) -> None:
        self.names: dict[str, Any] = {}
        self.problems: list[tuple[str, str]] = []
        self._collect(reader.schema)
        self._collect(writer.schema)
        self.seen: set[tuple[str, str]] = set()

    def _collect(self, t: Any) -> None:
        if isinstance(t, list):
            for b in t:
                self._collect(b)
        elif isinstance(t, dict):
            if t.get("type") in ("record", "enum", "fixed", "error"):
                self.names.setdefault(str(t["name"]), t)
            for f in t.get("fields", []):
                self._collect(f["type"])
            for key in ("items", "values"):
                if key in t:
                    self._collect(t[key])

    def _resolve(self, t: Any) -> Any:
        if isinstance(t, str) and t in self.names:
            return self.names[t]
        if isinstance(t, dict) and t.get("type") in PRIMITIVES:
            return t["type"]
        return t

    def check(self, reader: Any, writer: Any, path: str) -> bool:
        r, w = self._resolve(reader), self._resolve(writer)
        rk, wk = kind_of(r), kind_of(w)
        if wk == "union":
            ok = True
            for branch in w:
                ok = self.check(r, branch, path) and ok
            return ok
        if rk == "union":
            if any(self._matches(b, w, path) for b in r):
                return True
            self.problems.append((path, f"reader union has no branch for writer type {wk}"))
            return False
        if rk != wk:
            if rk in _PROMOTIONS.get(wk, set()):
                return True
            self.problems.append((path, f"type changed from {wk} to {rk}"))
            return False
        if rk in ("record", "error"):
            return self._record(r, w, path)
        if rk == "enum":
            missing = [s for s in w["symbols"] if s not in r["symbols"]]
            if missing and "default" not in r:
                self.problems.append((path, f"enum symbols {missing} removed without a default"))
                return False
        elif rk == "fixed" and r.get("size") != w.get("size"):
            self.problems.append(
                (path, f"fixed size changed from {w.get('size')} to {r.get('size')}")
            )
            return False
        elif rk == "array":
            return self.check(r["items"], w["items"], f"{path}[]")
        elif rk == "map":
            return self.check(r["values"], w["values"], f"{path}{{}}")
        if rk in ("enum", "fixed") and r["name"] != w["name"]:
            self.problems.append((path, f"named type renamed from {w['name']} to {r['name']}"))
            return False
        return True

    def _matches(self, reader_branch: Any, writer: Any, path: str) -> bool:
        before = len(self.problems)
        ok = self.check(reader_branch, writer, path)
        del self.problems[before:]
        return ok

    def _record(self, r: Any, w: Any, path: str) -> bool:
        if r["name"] != w["name"]:
            self.problems.append((path or ".", f"record renamed from {w['name']} to {r['name']}"))
            return False
        key = (f"{path}:{r['name']}", str(w["name"]))
        if key in self.seen:
            return True
        self.seen.add(key)
        writer_fields = {f["name"]: f for f in w.get("fields", [])}
        ok = True
        for f in r.get("fields", []):
            where = f"{path}.{f['name']}" if path else f["name"]
            if f["name"] in writer_fields:
                ok = self.check(f["type"], writer_fields[f["name"]]["type"], where) and ok
            elif "default" not in f:
                self.problems.append((where, "field added without a default"))
                ok = False
        return ok


def check_pair(reader: SchemaVersion, writer: SchemaVersion) -> list[Incompatibility]:
    """Why ``reader`` cannot read data written with ``writer`` (empty when it can)."""
    checker = _Checker(reader, writer)
    checker.check(reader.schema, writer.schema, "")
    return [
        Incompatibility(reader.name, reader.version, writer.version, field or ".", reason)
        for field, reason in checker.problems
    ]


def check_registry(registry: SchemaRegistry) -> list[Incompatibility]:
    """Every BACKWARD_TRANSITIVE break: each version against all earlier versions."""
    problems: list[Incompatibility] = []
    for name in registry.names():
        versions = registry.versions(name)
        for i, reader in enumerate(versions):
            for writer in versions[:i]:
                problems.extend(check_pair(reader, writer))
    return problems
