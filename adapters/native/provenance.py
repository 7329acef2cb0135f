"""Where a rendered document came from, and what was withheld from it and why.

A caseworker reading a file in a partner's outbox must be able to tell who sent it, which
event it is, when the router decided it, under which rule and lawful basis (when the
delivery says), its handling markings, and, for each thing withheld from them, a plain
sentence saying what and why. :func:`provenance_of` builds that from the delivered event;
:func:`attach` puts it into each native format in that format's idiom: a ``provenance``
member of a JSON document, a ``<Provenance>`` element at the end of an XML document's root,
and a CSV sidecar (``<event id>.provenance.csv``) next to a CSV document.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape

from adapters.native.documents import PROVENANCE_ELEMENT, PROVENANCE_MEMBER
from adapters.protocol import DeliveredEvent

PERSON_SENTENCE = (
    "{who}: identity, contact details, linking references and the account about this "
    "victim withheld — an adult (or a victim whose age is unknown) who has not consented "
    "is never identifiable (MSA 2015 s.52(3))"
)
MIXED_SENTENCE = (
    "narratives and references about several people withheld where they also concern a "
    "victim who may not be identified (they cannot be split) — MSA 2015 s.52(3)"
)
ABROAD_SENTENCE = (
    "every person's identity withheld: identity leaves the UK only where a rule names the "
    "recipient and the lawful basis (DPA 2018 s.73)"
)


def withheld_sentences(view: str | None) -> list[str]:
    """One plain sentence per thing the view's name says a guard withheld.

    The router names a narrowed view ``<rule view>+no-identity`` (a transfer abroad) and
    ``<rule view>+no-identity:<person>,...`` (each protected victim, e.g. ``victims[1]``).
    """
    if not view:
        return []
    # The rule's own view (parts[0]) is named in the provenance's ``view``; what it keeps is
    # the data-sharing agreement's business. Only what a guard withheld is explained here.
    out: list[str] = []
    for part in view.split("+")[1:]:
        if part == "no-identity":
            out.append(ABROAD_SENTENCE)
        elif part.startswith("no-identity:"):
            for who in part.split(":", 1)[1].split(","):
                out.append(PERSON_SENTENCE.format(who=who))
            out.append(MIXED_SENTENCE)
    return out


def provenance_of(event: DeliveredEvent) -> dict[str, Any]:
    """The provenance of ``event`` as plain values (strings, lists), in a fixed order."""
    p: Mapping[str, Any] = event.provenance or {}
    m = event.markings
    markings = {
        k: m.get(k)
        for k in ("classification", "tlp", "siena_handling", "siena_restrictions")
        if m.get(k) is not None
    }
    grading = m.get("grading")
    if isinstance(grading, Mapping) and grading.get("handling") is not None:
        markings["handling_code"] = grading.get("handling")
    out: dict[str, Any] = {
        "sending_agency": event.source,
        "event_id": event.event_id,
        "event_type": event.event_type,
        "decided_at": p.get("decided_at"),
        "recipient": p.get("recipient"),
        "view": p.get("view"),
        "rule": p.get("rule"),
        "agreement": p.get("agreement"),
        "purposes": list(p.get("purposes") or []),
        "lawful_basis": p.get("lawful_basis"),
        "transfer_basis": p.get("transfer_basis"),
        "onward_sharing": p.get("onward_sharing"),
        "retention": p.get("retention"),
        "markings": {k: str(v) for k, v in markings.items()},
        # The router's own sentences when the view carries them (Header v2); else read from
        # the view's name, as views from an earlier router say it.
        "withheld": list(p.get("withheld") or []) or withheld_sentences(p.get("view")),
    }
    return out


def attach(event: DeliveredEvent, extension: str, data: bytes) -> tuple[bytes, bytes | None]:
    """``data`` with the provenance in it, and a sidecar for formats that cannot hold it.

    Returns ``(document, sidecar)``; ``sidecar`` is ``None`` except for CSV.
    """
    prov = provenance_of(event)
    ext = extension.lower().lstrip(".")
    if ext == "json":
        doc = json.loads(data)
        if isinstance(doc, dict):
            doc[PROVENANCE_MEMBER] = prov
            return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8"), None
    if ext == "xml":
        return _xml(data, prov), None
    return data, _csv(prov)


def _xml(data: bytes, prov: Mapping[str, Any]) -> bytes:
    text = data.decode("utf-8").rstrip()
    end = text.rfind("</")
    if end < 0:
        return data
    lines = [f"<{PROVENANCE_ELEMENT}>"]
    for key, value in prov.items():
        tag = _tag(key)
        if isinstance(value, dict):
            lines.append(f"<{tag}>")
            lines += [f"<{_tag(k)}>{escape(str(v))}</{_tag(k)}>" for k, v in value.items()]
            lines.append(f"</{tag}>")
        elif isinstance(value, list):
            lines.append(f"<{tag}>")
            lines += [f"<Item>{escape(str(v))}</Item>" for v in value]
            lines.append(f"</{tag}>")
        elif value is not None:
            lines.append(f"<{tag}>{escape(str(value))}</{tag}>")
    lines.append(f"</{PROVENANCE_ELEMENT}>")
    return (text[:end] + "".join(lines) + text[end:] + "\n").encode("utf-8")


def _tag(key: str) -> str:
    return "".join(w.capitalize() for w in key.split("_"))


def _csv(prov: Mapping[str, Any]) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["item", "value"])
    for key, value in prov.items():
        if isinstance(value, dict):
            for k, v in value.items():
                w.writerow([f"markings.{k}", v])
        elif isinstance(value, list):
            for v in value:
                w.writerow([key, v])
        elif value is not None:
            w.writerow([key, value])
    return out.getvalue().encode("utf-8")
