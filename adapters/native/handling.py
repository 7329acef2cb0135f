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
    """Markings of a UK police or CPS document: every marking its format can carry."""
    markings = base_markings(handling.classification, handling.tlp)
    g = handling.grading
    markings.update(
        intended_recipients=list(handling.intended_recipients),
        grading=(
            None
            if g is None
            else {
                "source": f"SOURCE_{g.source}",
                "intelligence": g.intelligence,
                "handling": g.handling,
            }
        ),
        siena_handling=handling.siena_handling,
        siena_restrictions=handling.siena_restrictions,
        origin_country=handling.origin_country,
        origin_authorised_recipients=list(handling.origin_authorised_recipients),
    )
    return markings


def handling_from_markings(markings: Mapping[str, Any]) -> dict[str, Any]:
    """The native ``handling`` group of a delivered event: every marking, so the recipient
    keeps applying the originator's restrictions."""
    out: dict[str, Any] = {
        "classification": str(markings.get("classification") or "OFFICIAL_SENSITIVE"),
        "tlp": str(markings.get("tlp") or "AMBER"),
        "intended_recipients": list(markings.get("intended_recipients") or []),
    }
    grading = markings.get("grading")
    if isinstance(grading, Mapping):
        out["grading"] = {
            "source": str(grading.get("source", "")).removeprefix("SOURCE_"),
            "intelligence": str(grading.get("intelligence")),
            "handling": str(grading.get("handling")),
        }
    for key in ("siena_handling", "siena_restrictions", "origin_country"):
        if markings.get(key):
            out[key] = str(markings[key])
    if markings.get("origin_authorised_recipients"):
        out["origin_authorised_recipients"] = list(markings["origin_authorised_recipients"])
    return out
