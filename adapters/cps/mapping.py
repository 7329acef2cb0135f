"""CPS documents → canonical events: charging decisions and hearing outcomes (``case.*``).

The case update is the same document police send, so the mapping is shared
(:mod:`adapters.native.casemap`): keyed by URN, markings from the document's handling.
"""

from __future__ import annotations

from adapters.native.casemap import CASE_RECORD, case_event, case_native, case_payload

__all__ = ["CASE_RECORD", "case_event", "case_native", "case_payload"]
