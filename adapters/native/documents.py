"""Reading native documents safely: JSON objects and XML trees, with the project's errors.

XML is parsed with defusedxml and every DTD, entity declaration and external reference is
refused, so a document cannot expand entities (billion laughs), read local files or fetch
a remote DTD. Malformed input of any kind becomes :class:`InputValidationError`.
"""

from __future__ import annotations

import json
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from broker.errors import FieldProblem, InputValidationError, UnsafeXmlError

MAX_DOCUMENT_BYTES = 5 * 1024 * 1024
"""Larger native documents are refused before parsing (a referral is a few kilobytes)."""


def _check_size(data: bytes, what: str) -> None:
    if len(data) > MAX_DOCUMENT_BYTES:
        raise InputValidationError(
            f"{what} is invalid",
            [FieldProblem("(document)", f"is larger than {MAX_DOCUMENT_BYTES} bytes")],
        )


def decode_text(data: bytes, what: str) -> str:
    """``data`` as UTF-8 text (a byte-order mark is allowed)."""
    _check_size(data, what)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputValidationError(
            f"{what} is invalid",
            [FieldProblem("(document)", f"is not UTF-8 text (bad byte at offset {exc.start})")],
        ) from exc


PROVENANCE_MEMBER = "provenance"
"""The JSON member a rendered document's provenance is in (adapters.native.provenance)."""
PROVENANCE_ELEMENT = "Provenance"
"""The XML element a rendered document's provenance is in."""


def load_json_object(data: bytes, what: str) -> dict[str, Any]:
    """Parse ``data`` as one JSON object."""
    text = decode_text(data, what)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        reason = (
            "is empty"
            if not text.strip()
            else f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        )
        raise InputValidationError(
            f"{what} is invalid", [FieldProblem("(document)", reason)]
        ) from exc
    except RecursionError as exc:
        raise InputValidationError(
            f"{what} is invalid", [FieldProblem("(document)", "is nested too deeply")]
        ) from exc
    if not isinstance(value, dict):
        kinds = {list: "an array", str: "a string", bool: "true or false", type(None): "null"}
        kind = kinds.get(type(value), "a number")
        raise InputValidationError(
            f"{what} is invalid",
            [FieldProblem("(document)", f"must be a JSON object, not {kind}")],
        )
    # A document rendered by a subscriber carries the provenance of that delivery; it says
    # nothing about a new publication, whose provenance the exchange adds itself.
    value.pop(PROVENANCE_MEMBER, None)
    return value


def load_xml(data: bytes, what: str) -> Element:
    """Parse ``data`` as XML, refusing DTDs, entities and external references."""
    _check_size(data, what)
    try:
        root: Element = SafeET.fromstring(
            data, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException as exc:
        raise UnsafeXmlError(
            f"{what} is refused",
            [
                FieldProblem(
                    "(document)",
                    "uses a DTD, entity declaration or external reference, which are not allowed "
                    f"({type(exc).__name__})",
                )
            ],
        ) from exc
    except (ParseError, ValueError, RecursionError) as exc:
        raise InputValidationError(
            f"{what} is invalid", [FieldProblem("(document)", f"is not well-formed XML ({exc})")]
        ) from exc
    for child in [c for c in root if local(c.tag) == PROVENANCE_ELEMENT]:
        root.remove(child)  # as for JSON: an earlier delivery's provenance, not the sender's
    return root


def local(tag: str) -> str:
    """An element tag without its ``{namespace}``."""
    return tag.rsplit("}", 1)[-1]
