"""Markings dicts as the event header carries them, built from native handling fields.

Names follow the policy's vocabulary (:mod:`broker.policy.markings`): classification, TLP,
SIENA handling (``NONE`` when a document has none), the restriction text of H3, the 3x5x2
grading, intended recipients and the country of origin.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.vocab import Handling


def base_markings(classification: str, tlp: str) -> dict[str, Any]:
    """Markings with no SIENA handling, grading, named recipients or foreign origin."""
    return {
        "classification": classification,
        "tlp": tlp,
        "siena_handling": "NONE",
        "siena_restrictions": None,
        "source_evaluation": None,
        "information_evaluation": None,
        "grading": None,
        "intended_recipients": [],
        "origin_country": None,
        "origin_authorised_recipients": [],
    }


def police_markings(handling: Handling) -> dict[str, Any]:
    """Markings of a UK police or CPS document."""
    return base_markings(handling.classification, handling.tlp)


def handling_from_markings(markings: Mapping[str, Any]) -> dict[str, Any]:
    """The native ``handling`` group (classification and TLP) of a delivered event."""
    return {
        "classification": str(markings.get("classification") or "OFFICIAL_SENSITIVE"),
        "tlp": str(markings.get("tlp") or "AMBER"),
    }
