"""CPS documents → canonical events: charging decisions and hearing outcomes (``case.*``).

The case update is the same document police send, so the mapping is shared
(:func:`adapters.case.case_event`): keyed by URN, markings from the document's handling.
"""

from __future__ import annotations

from adapters.case import CASE_RECORD, case_event

__all__ = ["CASE_RECORD", "case_event"]
