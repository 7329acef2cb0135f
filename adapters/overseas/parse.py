"""Overseas native input → :class:`~adapters.overseas.models.OverseasAlert`.

Reads the UMF-like XML (root ``<UMFMessage>``, parsed with defusedxml: no DTDs, entities or
external references) and the Interpol-style diffusion JSON (``{"diffusion": {...}}``).
"""

from __future__ import annotations

from pydantic import ValidationError

from adapters.native.documents import load_json_object, load_xml, local
from adapters.native.problems import location, problems_from, validate
from adapters.native.xmlmap import element_to_data, xml_location
from adapters.overseas.models import DIFFUSION_KEY, LIST_ITEMS, UMF_ROOT, OverseasAlert
from broker.errors import FieldProblem, InputValidationError


def parse_alert_xml(data: bytes) -> OverseasAlert:
    """A UMF-like alert message."""
    what = "UMF alert XML"
    root = load_xml(data, what)
    if local(root.tag) != UMF_ROOT:
        raise InputValidationError(
            f"{what} is invalid",
            [FieldProblem("(document)", f"root element must be {UMF_ROOT}, not {local(root.tag)}")],
        )
    content = element_to_data(root, LIST_ITEMS)
    content = content if isinstance(content, dict) else {}
    content.setdefault("channel", "siena")
    try:
        return OverseasAlert.model_validate(content)
    except ValidationError as exc:
        raise InputValidationError(
            f"{what} is invalid", problems_from(exc, lambda loc: xml_location(loc, LIST_ITEMS))
        ) from exc


def parse_alert_json(data: bytes) -> OverseasAlert:
    """An Interpol-style diffusion: one object under the key ``diffusion``."""
    what = "diffusion JSON"
    doc = load_json_object(data, what)
    body = doc.get(DIFFUSION_KEY)
    if set(doc) != {DIFFUSION_KEY} or not isinstance(body, dict):
        raise InputValidationError(
            f"{what} is invalid",
            [FieldProblem(DIFFUSION_KEY, "must be the only top-level key and hold an object")],
        )
    body.setdefault("channel", "interpol_diffusion")
    return validate(OverseasAlert, body, what, lambda loc: location((DIFFUSION_KEY, *loc)))
