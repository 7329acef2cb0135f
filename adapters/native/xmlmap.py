"""A plain mapping between XML elements and the nested dicts the native models validate.

Element names are the model's field names in CamelCase (``officer_in_case`` ↔
``OfficerInCase``; acronyms such as ``URN`` and ``TLP`` stay upper case). A list field is a
container element whose children are its items (``<Defendants><Defendant>…``). Parsing keeps
unknown elements as unknown keys, so the model refuses them by name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any
from xml.etree.ElementTree import Element, SubElement, indent, tostring

from adapters.native.documents import local

_ACRONYMS = {"urn": "URN", "tlp": "TLP", "siena": "SIENA", "id": "Id"}
_CAMEL_SPLIT = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def to_element_name(field: str) -> str:
    """``officer_in_case`` → ``OfficerInCase``; ``urn`` → ``URN``."""
    return "".join(_ACRONYMS.get(p, p.capitalize()) for p in field.split("_"))


def to_field_name(element: str) -> str:
    """``OfficerInCase`` → ``officer_in_case``; ``URN`` → ``urn``."""
    return "_".join(p.lower() for p in _CAMEL_SPLIT.split(element))


def element_to_data(el: Element, list_items: Mapping[str, str]) -> Any:
    """An element as a dict (children), list (``list_items`` fields) or text (leaf)."""
    kids = list(el)
    if not kids:
        value = (el.text or "").strip()
        name = to_field_name(local(el.tag))
        if name in list_items:
            return []
        return value or None
    out: dict[str, Any] = {}
    for kid in kids:
        name = to_field_name(local(kid.tag))
        if name in list_items:
            out[name] = [element_to_data(item, list_items) for item in kid]
        elif name in out:
            # A repeated single element: keep both so the model reports it.
            out[f"{name}_repeated"] = element_to_data(kid, list_items)
        else:
            out[name] = element_to_data(kid, list_items)
    return out


def data_to_element(parent: Element, name: str, value: Any, list_items: Mapping[str, str]) -> None:
    """Append ``value`` under ``parent`` as element(s) for field ``name``; ``None`` is left out."""
    if value is None:
        return
    tag = to_element_name(name)
    if name in list_items:
        if not value:
            return
        container = SubElement(parent, tag)
        item_tag = list_items[name]
        for item in value:
            _fill(SubElement(container, item_tag), item, list_items)
        return
    _fill(SubElement(parent, tag), value, list_items)


def _fill(el: Element, value: Any, list_items: Mapping[str, str]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            data_to_element(el, str(k), v, list_items)
    else:
        el.text = _scalar(value)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


def build_document(root: str, data: Mapping[str, Any], list_items: Mapping[str, str]) -> bytes:
    """A complete UTF-8 XML document with root element ``root`` holding ``data``."""
    el = Element(root)
    _fill(el, data, list_items)
    indent(el)
    body: bytes = tostring(el, encoding="utf-8", xml_declaration=True)
    return body


def xml_location(loc: Sequence[int | str], list_items: Mapping[str, str]) -> str:
    """A pydantic location as an XML path, e.g. ``Defendants/Defendant[1]/DateOfBirth``."""
    parts: list[str] = []
    previous: str | None = None
    for part in loc:
        if isinstance(part, int) and previous is not None and previous in list_items:
            parts.append(f"{list_items[previous]}[{part + 1}]")
        elif isinstance(part, str):
            parts.append(to_element_name(part))
            previous = part
    return "/".join(parts) or "(document)"
