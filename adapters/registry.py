"""Which adapter reads and writes which native format; format detection for ``--format auto``."""

from __future__ import annotations

import json
from pathlib import PurePath

from adapters.cps.adapter import CpsAdapter
from adapters.overseas.adapter import OverseasAdapter
from adapters.police.adapter import PoliceAdapter
from adapters.protocol import Adapter, Sniffed
from broker.errors import FieldProblem, InputValidationError

ADAPTERS: tuple[Adapter, ...] = (PoliceAdapter(), CpsAdapter(), OverseasAdapter())
"""Every agency family's adapter."""

PARSE_FORMATS: dict[str, Adapter] = {f: a for a in ADAPTERS for f in a.parse_formats}
"""Format name → the adapter that reads it."""

RENDER_FORMATS: dict[str, Adapter] = {f: a for a in ADAPTERS for f in a.render_formats}
"""Format name → the adapter that writes it."""


def parser_for(fmt: str) -> Adapter:
    """The adapter that reads ``fmt``."""
    try:
        return PARSE_FORMATS[fmt]
    except KeyError:
        raise InputValidationError(
            "unknown input format",
            [FieldProblem("--format", f"must be one of {', '.join(sorted(PARSE_FORMATS))}")],
        ) from None


FAMILY_OF_PARTNER_KIND: dict[str, str] = {k: a.family for a in ADAPTERS for k in a.partner_kinds}
"""Which family's formats a partner of each kind (policy ``kind``) reads."""

FAMILIES: tuple[str, ...] = tuple(a.family for a in ADAPTERS)
"""Every adapter family's name (``police``, ``cps``, ``overseas``)."""


def extension_for(fmt: str) -> str:
    """The file extension (no dot) of a document rendered as ``fmt``."""
    return RENDER_FORMATS[fmt].extension(fmt)


def renderer_for(
    event_type: str, fmt: str | None = None, family: str | None = None
) -> tuple[Adapter, str] | None:
    """The adapter and format to render ``event_type`` in.

    ``fmt`` is used when its adapter renders this event type; otherwise the default format
    of ``family`` (the partner's adapter family), otherwise the first adapter that can.
    """
    if fmt is not None and fmt in RENDER_FORMATS:
        adapter = RENDER_FORMATS[fmt]
        if adapter.default_render_format(event_type) is not None:
            return adapter, fmt
    preferred = [a for a in ADAPTERS if a.family == family]
    for adapter in [*preferred, *ADAPTERS]:
        default = adapter.default_render_format(event_type)
        if default is not None:
            return adapter, default
    return None


def sniff(name: str, data: bytes) -> Sniffed:
    """Read what every adapter's format detection looks at, once."""
    suffix = PurePath(name).suffix.lower()
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    doc: object = None
    if suffix == ".json" or head.startswith(b"{"):
        try:
            doc = json.loads(data.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            doc = None
    return Sniffed(suffix, head, doc if isinstance(doc, dict) else None)


def detect_format(name: str, data: bytes) -> str:
    """Guess a file's format from its name and first bytes, asking every adapter.

    Raises :class:`InputValidationError` when the content matches no known format, or
    more than one.
    """
    sniffed = sniff(name, data)
    claims = [fmt for adapter in ADAPTERS if (fmt := adapter.detect(sniffed)) is not None]
    if len(claims) == 1:
        return claims[0]
    formats = list(PARSE_FORMATS)
    choices = ", ".join(formats[:-1]) + " or " + formats[-1]
    if claims:
        raise InputValidationError(
            f"{name} matches more than one format",
            [FieldProblem("(document)", f"it could be {' or '.join(claims)}: give --format")],
        )
    raise InputValidationError(
        f"{name} is not in a recognised format",
        [*unrecognised(name, data), FieldProblem("(document)", f"give --format ({choices})")],
    )


_JSON_KINDS = {list: "an array", str: "a string", bool: "true or false", type(None): "null"}


def unrecognised(name: str, data: bytes) -> list[FieldProblem]:
    """What is wrong with a document no format claims: empty; not UTF-8; not JSON (at
    line:column) though it looks like JSON; JSON but not an object; or which JSON format it
    comes closest to (the one whose validation finds the fewest problems, with them)."""
    body = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not body:
        return [FieldProblem("(document)", f"is empty ({len(data)} bytes, no content)")]
    looks_json = PurePath(name).suffix.lower() == ".json" or body[:1] in (b"{", b"[")
    if not looks_json:
        return []
    try:
        value = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        return [FieldProblem("(document)", f"is not UTF-8 text (bad byte at offset {exc.start})")]
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        return [FieldProblem("(document)", f"is not JSON: {exc.msg} at {where}")]
    except RecursionError:
        return [FieldProblem("(document)", "is JSON nested too deeply")]
    if not isinstance(value, dict):
        kind = _JSON_KINDS.get(type(value), "a number")
        return [FieldProblem("(document)", f"is JSON but {kind}, not an object")]
    return _closest_json_format(data)


def _closest_json_format(data: bytes) -> list[FieldProblem]:
    best: tuple[int, str, list[FieldProblem]] | None = None
    for fmt, adapter in PARSE_FORMATS.items():
        if not fmt.endswith("-json"):
            continue
        try:
            result = adapter.parse(data, fmt)
        except InputValidationError as exc:
            problems = list(exc.problems)
        else:
            problems = [p for r in result.rejected for p in r.error.problems]
        if best is None or len(problems) < best[0]:
            best = (len(problems), fmt, problems)
    if best is None:
        return []
    count, fmt, problems = best
    shown = "; ".join(f"{p.location} {p.reason}" for p in problems[:5])
    more = f" (and {count - 5} more)" if count > 5 else ""
    return [
        FieldProblem(
            "(document)",
            f"is a JSON object closest to {fmt}, which it fails in {count} field(s): {shown}{more}",
        )
    ]
