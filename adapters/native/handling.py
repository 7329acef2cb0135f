"""Markings dicts as the event header carries them, built from native handling fields.

Keys and symbols are those of the ``Markings`` record (schemas/Markings.v1.avsc):
classification, TLP, SIENA handling (``None`` when a document has none) with the H3
restriction text, the 3x5x2 grading, the SIENA evaluation, intended recipients and the
country of origin.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.native.vocab import Handling


def base_markings(classification: str, tlp: str) -> dict[str, Any]:
    """Markings with no SIENA handling, grading, named recipients or foreign origin."""
    return {
        "classification": classification,
        "tlp": tlp,
        "siena_handling": None,
        "siena_restrictions": None,
        "grading": None,
        "evaluation": None,
        "intended_recipients": [],
        "origin_country": None,
        "origin_authorised_recipients": [],
    }


def police_markings(handling: Handling) -> dict[str, Any]:
    """Markings of a UK police or CPS document."""
    markings = base_markings(handling.classification, handling.tlp)
    markings["intended_recipients"] = list(handling.intended_recipients)
    return markings


def handling_from_markings(markings: Mapping[str, Any]) -> dict[str, Any]:
    """The native ``handling`` group (classification and TLP) of a delivered event."""
    return {
        "classification": str(markings.get("classification") or "OFFICIAL_SENSITIVE"),
        "tlp": str(markings.get("tlp") or "AMBER"),
        "intended_recipients": list(markings.get("intended_recipients") or []),
    }
