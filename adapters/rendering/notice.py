"""A status notice (``broker.review.notice``) rendered for the source agency's own systems.

Rendered in the family of the subscriber's format: XML for a subscriber that writes XML
(``alert-xml``), JSON otherwise. Identifiers and reasons only, as the router wrote them.
"""

from __future__ import annotations

from adapters.native.payloads import to_json
from adapters.native.xmlmap import build_document
from adapters.registry import extension_for
from broker.review.notice import Notice

NOTICE_ROOT = "ReviewNotice"


def render_notice(notice: Notice, fmt: str | None) -> tuple[str, bytes]:
    """The file extension and bytes of ``notice`` for a subscriber writing ``fmt``."""
    fields = notice.as_dict()
    if fmt is not None and extension_for(fmt) == "xml":
        xml_fields = {
            "NoticeId": fields["notice_id"],
            "Status": fields["status"],
            "EventId": fields["event_id"],
            "HoldId": fields["hold_id"],
            "Source": fields["source"],
            "Subject": fields["subject"],
            "Partners": list(notice.partners),
            "Guard": fields["guard"],
            "Reason": fields["reason"],
            "Reviewer": fields["reviewer"] or "",
            "At": fields["at"],
        }
        return "xml", build_document(NOTICE_ROOT, xml_fields, {"Partners": "Partner"})
    return "json", to_json({"review_notice": fields})
