"""A Duty to Notify report is anonymous: what makes one unlawful to pass on.

MSA 2015 s.52(3): the report the Secretary of State receives for an adult who has not
consented must not contain information that identifies them, alone or in combination with
other information. So a ``referral.dtn`` that claims consent, or fills in any field the schema
says is a victim's identity, contact, linking reference, narrative or special-category data,
is not a Duty to Notify report: the police adapter refuses one and the router quarantines one
that arrives anyway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from broker.events.fields import FieldInfo
from broker.policy.views import carries_value

DTN_EVENT_TYPE = "referral.dtn"
DTN_LAW = (
    "a Duty to Notify report is anonymous (MSA 2015 s.52(3)); with consent, submit an NRM referral"
)
"""The reason given with every refusal."""

_CONSENT_KEYS = ("consent", "victim_consent")


def dtn_problems(
    event_type: str, payload: Mapping[str, Any], fields: Sequence[FieldInfo]
) -> list[str]:
    """What makes this Duty to Notify report identifying, one line per field; empty if none.

    Only victim fields count (the filing organisation's name is not the victim's); a schema
    without ``msht.person`` attributes counts every tagged field.
    """
    if event_type != DTN_EVENT_TYPE:
        return []
    typed = any(f.person is not None for f in fields)
    out = [
        f"{key}: claims consent"
        for key in _CONSENT_KEYS
        if payload.get(key) is True or str(payload.get(key)).lower() == "yes"
    ]
    for f in fields:
        if not f.kinds or (typed and f.role not in ("victim", "mixed")):
            continue
        if carries_value(payload, f.path):
            out.append(f"{f.path}: carries {'/'.join(sorted(f.kinds))} data")
    return out
