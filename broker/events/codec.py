"""Avro binary with Avro's single-object encoding, and the translation of fastavro's errors.

Single-object encoding is two marker bytes ``C3 01``, the 8-byte little-endian CRC-64-AVRO
fingerprint of the writer schema's Parsing Canonical Form, then the Avro binary body. A
decoder finds the writer schema by fingerprint and resolves it into the reader's version
(by default the newest version of the same record), so data written by an older build
reads in the shape this build expects.

Writing is strict: a field the schema does not have, or a value of the wrong type, is an
:class:`~broker.errors.EncodeError` naming the field. Reading raises only
:class:`~broker.errors.CodecError` subclasses, whatever the bytes are.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import fastavro
from fastavro.validation import ValidationError, validate

from broker.errors import (
    BadMarkerError,
    EncodeError,
    MalformedBodyError,
    TruncatedEventError,
    UnknownSchemaError,
)
from broker.events.schemas import SchemaRegistry, SchemaVersion, registry

MARKER = b"\xc3\x01"
"""Avro single-object encoding's two marker bytes."""

HEADER_LENGTH = len(MARKER) + 8
"""Marker plus fingerprint: the bytes before the body."""


@dataclass(frozen=True)
class Decoded:
    """A decoded single-object: which schema wrote it, which shape it was read into, the record."""

    writer: SchemaVersion
    reader: SchemaVersion
    record: dict[str, Any]


def _schema(record: str | SchemaVersion, reg: SchemaRegistry | None) -> SchemaVersion:
    if isinstance(record, SchemaVersion):
        return record
    return (reg or registry()).current(record)


def encode_body(
    record: str | SchemaVersion,
    datum: Mapping[str, Any],
    *,
    reg: SchemaRegistry | None = None,
    check: bool = True,
) -> bytes:
    """The Avro binary body of ``datum`` under ``record`` (a name means its newest version).

    Raises :class:`EncodeError` naming the field that does not fit. ``check=False`` skips
    the strict validation (fastavro's writer alone accepts e.g. ``True`` or ``1.5`` for a
    long): only for values that came out of Avro decoding and were changed in ways that keep
    them valid — the router's views and the canonical-bytes check — where validating every
    union branch was the largest cost per event.
    """
    schema = _schema(record, reg)
    try:
        # The quiet pass first: with raise_errors=True fastavro builds a ValidationError (its
        # message a JSON dump of the schema) for every union branch that does not match,
        # even when another branch does; that was most of a publisher's encode. Only a
        # datum that does not fit is validated again, for the detailed problems.
        if check and not validate(datum, schema.parsed, raise_errors=False, strict=True):
            validate(datum, schema.parsed, raise_errors=True, strict=True)
    except ValidationError as exc:
        problems = "; ".join(_problem(e) for e in exc.errors) or "invalid value"
        raise EncodeError(
            f"{schema.short_name} v{schema.version}: record does not fit the schema: {problems}"
        ) from exc
    except Exception as exc:  # validate raises assorted built-ins on odd input
        raise EncodeError(
            f"{schema.short_name} v{schema.version}: record does not fit the schema "
            f"({type(exc).__name__})"
        ) from exc
    out = io.BytesIO()
    try:
        fastavro.schemaless_writer(out, schema.parsed, dict(datum), strict_allow_default=True)
    except Exception as exc:  # fastavro's writer raises ValueError/TypeError/AttributeError
        raise EncodeError(
            f"{schema.short_name} v{schema.version}: record cannot be written: {exc}"
        ) from exc
    return out.getvalue()


_PROBLEM = re.compile(
    r"^(?P<path>\S+) is <.*> of type <class '(?P<got>[^']+)'> expected (?P<exp>.*)$", re.S
)
_EXPECTED_NAME = re.compile(r"'name': '([^']+)'")
_EXPECTED_TYPE = re.compile(r"'type': '([^']+)'")


def _problem(error: Any) -> str:
    """One validation problem, naming the field and never quoting the value."""
    schema = getattr(error, "schema", None)
    datum = getattr(error, "datum", None)
    if isinstance(schema, dict) and schema.get("type") == "record" and isinstance(datum, dict):
        fields = {f["name"]: f for f in schema.get("fields", [])}
        missing = [n for n, f in fields.items() if n not in datum and "default" not in f]
        extra = [str(k) for k in datum if k not in fields]
        parts = [f"{schema['name']}.{n}: required field is missing" for n in missing]
        parts += [f"{schema['name']}.{n}: not a field of the schema" for n in extra]
        if parts:
            return "; ".join(parts)
    return _describe(str(error))


def _describe(problem: str) -> str:
    """A fastavro validation problem without the offending value (it may be personal data)."""
    match = _PROBLEM.match(problem)
    if not match:
        return "a value does not fit its field"
    expected = match["exp"].strip()
    if expected.startswith(("{", "[")):
        names = _EXPECTED_NAME.findall(expected) or _EXPECTED_TYPE.findall(expected)[:1]
        expected = " or ".join(dict.fromkeys(names)) if names else "another type"
    return f"{match['path']}: a {match['got']} value where {expected} is expected"


def decode_body(
    body: bytes,
    writer: SchemaVersion,
    reader: SchemaVersion | None = None,
) -> dict[str, Any]:
    """Read an Avro binary body written with ``writer`` into ``reader`` (default: writer).

    Every byte must be consumed. Raises :class:`TruncatedEventError` when the body ends
    early and :class:`MalformedBodyError` for anything else that does not decode.
    """
    target = reader or writer
    stream = io.BytesIO(body)
    label = f"{writer.short_name} v{writer.version}"
    try:
        value = fastavro.schemaless_reader(
            stream,
            writer.parsed,
            target.parsed if target is not writer else None,
        )
    except EOFError as exc:
        raise TruncatedEventError(f"{label}: body ends before the record does") from exc
    except Exception as exc:  # fastavro raises built-ins (ValueError, IndexError, ...) here
        raise MalformedBodyError(f"{label}: body does not decode ({type(exc).__name__})") from exc
    if stream.tell() != len(body):
        raise MalformedBodyError(
            f"{label}: {len(body) - stream.tell()} bytes follow the end of the record"
        )
    if not isinstance(value, dict):
        raise MalformedBodyError(f"{label}: body is not a record")
    return value


def encode(
    record: str | SchemaVersion,
    datum: Mapping[str, Any],
    *,
    reg: SchemaRegistry | None = None,
    check: bool = True,
) -> bytes:
    """``datum`` in single-object encoding: ``C3 01`` + fingerprint + body (``check``: as
    :func:`encode_body`)."""
    schema = _schema(record, reg)
    return MARKER + schema.fingerprint + encode_body(schema, datum, reg=reg, check=check)


def split_frame(data: bytes, *, reg: SchemaRegistry | None = None) -> tuple[SchemaVersion, bytes]:
    """The writer schema named by a single-object frame, and the body after it."""
    if len(data) < len(MARKER):
        raise TruncatedEventError(f"{len(data)} bytes: too short for the single-object marker")
    if data[: len(MARKER)] != MARKER:
        raise BadMarkerError(
            f"marker is {bytes(data[:2]).hex()}, not c301: not Avro single-object encoding"
        )
    if len(data) < HEADER_LENGTH:
        raise TruncatedEventError(
            f"{len(data)} bytes: too short for the marker and 8-byte schema fingerprint"
        )
    writer = (reg or registry()).by_fingerprint(bytes(data[2:HEADER_LENGTH]))
    return writer, bytes(data[HEADER_LENGTH:])


def decode(
    data: bytes,
    reader: str | SchemaVersion | None = None,
    *,
    reg: SchemaRegistry | None = None,
) -> Decoded:
    """Decode a single-object encoded record, resolved into ``reader``.

    ``reader`` defaults to the newest version of the writer's record, so older data reads
    in the current shape. A reader of a different record than the writer is refused.
    """
    writer, body = split_frame(data, reg=reg)
    target = (reg or registry()).current(writer.name) if reader is None else _schema(reader, reg)
    if target.name != writer.name:
        raise UnknownSchemaError(f"expected a {target.short_name}, the bytes hold a {writer.name}")
    return Decoded(writer=writer, reader=target, record=decode_body(body, writer, target))
