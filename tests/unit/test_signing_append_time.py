"""Ingress signatures judged at the broker's append time, which the publisher cannot choose."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from broker.crypto.signing import sign, verify
from broker.crypto.signing_keys import SigningKey
from broker.errors import ClockSkewError, KeyNotValidError, KeyRevokedError
from broker.events.envelope import Envelope, build_envelope
from tests.unit.event_keys import YEAR, agency_key, store, trusted
from tests.unit.event_samples import OCCURRED, markings, referral

SKEW = timedelta(minutes=5)
APPENDED = datetime.fromisoformat("2026-03-02T12:00:00+00:00")
"""When the broker appended the record (LogAppendTime)."""
MS = timedelta(milliseconds=1)


def signed_at(key: SigningKey, when: datetime) -> Envelope:
    """An event whose publisher stamped it (published_at and signed_at) with ``when``."""
    envelope = build_envelope(
        event_type="referral.nrm",
        source=key.agency,
        subject="R-1",
        markings=markings(),
        payload=referral(),
        occurred_at=OCCURRED,
        published_at=when,
    )
    return sign(envelope, key, signed_at=when)


def test_key_revoked_yesterday_refuses_an_event_back_dated_before_the_revocation() -> None:
    key = agency_key("wyp")
    revoked = APPENDED - timedelta(days=1)
    trust = store(trusted(key, not_before=APPENDED - YEAR, revoked_at=revoked))
    back_dated = signed_at(key, revoked - timedelta(hours=2))
    with pytest.raises(ClockSkewError, match="before the broker's append time"):
        verify(back_dated, trust, max_skew=SKEW, appended_at=APPENDED)


def test_back_dated_event_was_delivered_when_judged_at_its_own_signed_at() -> None:
    # The defect this rule fixes: judged at signed_at, the same back-dated event verifies.
    key = agency_key("wyp")
    revoked = APPENDED - timedelta(days=1)
    trust = store(trusted(key, not_before=APPENDED - YEAR, revoked_at=revoked))
    back_dated = signed_at(key, revoked - timedelta(hours=2))
    assert verify(back_dated, trust, now=APPENDED, max_skew=SKEW).signers == ("wyp",)


def test_revocation_counts_at_the_append_time_even_inside_the_skew() -> None:
    key = agency_key("wyp")
    revoked = APPENDED - timedelta(minutes=1)
    trust = store(trusted(key, not_before=APPENDED - YEAR, revoked_at=revoked))
    # Signed (honestly or not) two minutes before the revocation, appended one after it.
    event = signed_at(key, revoked - timedelta(minutes=2))
    with pytest.raises(KeyRevokedError, match="before the event was appended"):
        verify(event, trust, max_skew=SKEW, appended_at=APPENDED)


def test_key_revoked_after_the_append_time_still_verifies_its_earlier_record() -> None:
    key = agency_key("wyp")
    trust = store(
        trusted(key, not_before=APPENDED - YEAR, revoked_at=APPENDED + timedelta(hours=1))
    )
    event = signed_at(key, APPENDED)
    assert verify(event, trust, max_skew=SKEW, appended_at=APPENDED).signers == ("wyp",)


def test_key_expired_at_the_append_time_is_refused_though_valid_when_signed() -> None:
    key = agency_key("wyp")
    expiry = APPENDED - timedelta(minutes=1)
    trust = store(trusted(key, not_before=APPENDED - YEAR, not_after=expiry))
    event = signed_at(key, expiry - timedelta(minutes=2))
    with pytest.raises(KeyNotValidError, match="expired"):
        verify(event, trust, max_skew=SKEW, appended_at=APPENDED)


def test_key_not_yet_valid_at_the_append_time_is_refused() -> None:
    key = agency_key("wyp")
    trust = store(trusted(key, not_before=APPENDED + timedelta(minutes=1), not_after=None))
    event = signed_at(key, APPENDED + timedelta(minutes=2))
    with pytest.raises(KeyNotValidError, match="not yet valid"):
        verify(event, trust, max_skew=SKEW, appended_at=APPENDED)


@pytest.mark.parametrize(
    "offset",
    [-SKEW, -SKEW + MS, -MS, timedelta(0), MS, SKEW - MS, SKEW],
    ids=["-skew", "-skew+1ms", "-1ms", "0", "+1ms", "+skew-1ms", "+skew"],
)
def test_signed_at_within_the_skew_of_the_append_time_verifies(offset: timedelta) -> None:
    key = agency_key("wyp")
    trust = store(trusted(key, not_before=APPENDED - YEAR))
    event = signed_at(key, APPENDED + offset)
    assert verify(event, trust, max_skew=SKEW, appended_at=APPENDED).signers == ("wyp",)


@pytest.mark.parametrize(
    ("offset", "words"),
    [
        (-SKEW - MS, "before the broker's append time"),
        (-timedelta(days=1), "before the broker's append time"),
        (SKEW + MS, "in the future of the broker's append time"),
        (timedelta(days=1), "in the future of the broker's append time"),
    ],
    ids=["-skew-1ms", "-1day", "+skew+1ms", "+1day"],
)
def test_signed_at_beyond_the_skew_of_the_append_time_is_refused(
    offset: timedelta, words: str
) -> None:
    key = agency_key("wyp")
    trust = store(trusted(key, not_before=APPENDED - 2 * YEAR, not_after=None))
    event = signed_at(key, APPENDED + offset)
    with pytest.raises(ClockSkewError, match=words):
        verify(event, trust, max_skew=SKEW, appended_at=APPENDED)


def test_append_time_not_the_router_clock_bounds_the_future() -> None:
    # The router may read the record much later (lag, a restart): its clock does not matter.
    key = agency_key("wyp")
    trust = store(trusted(key, not_before=APPENDED - YEAR))
    event = signed_at(key, APPENDED + SKEW + MS)
    later = APPENDED + timedelta(days=3)
    with pytest.raises(ClockSkewError):
        verify(event, trust, now=later, max_skew=SKEW, appended_at=APPENDED)


def test_router_reading_late_still_judges_at_the_append_time() -> None:
    key = agency_key("wyp")
    trust = store(trusted(key, not_before=APPENDED - YEAR, not_after=APPENDED + timedelta(hours=1)))
    event = signed_at(key, APPENDED)
    later = APPENDED + timedelta(days=3)
    assert verify(event, trust, now=later, max_skew=SKEW, appended_at=APPENDED).signers == ("wyp",)
