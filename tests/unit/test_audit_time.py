"""``parse_time`` reads the written spelling field by field: exactly what strptime accepts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.audit.record import format_time, parse_time
from broker.errors import AuditChainError

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _strptime(text: str) -> datetime | None:
    """What the parser read before the field-by-field path: strptime, or None if it refused."""
    try:
        return datetime.strptime(text, _FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def _parse(text: str) -> datetime | None:
    try:
        return parse_time(text)
    except AuditChainError:
        return None


def _digits(n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=n, max_size=n)


@given(
    st.tuples(_digits(4), _digits(2), _digits(2), _digits(2), _digits(2), _digits(2), _digits(6))
)
def test_every_time_of_the_written_shape_reads_as_strptime_reads_it(
    fields: tuple[str, ...],
) -> None:
    # Random digits: most are out of range (month 47, second 83); both must refuse those.
    y, mo, d, h, mi, s, f = fields
    text = f"{y}-{mo}-{d}T{h}:{mi}:{s}.{f}Z"
    assert _parse(text) == _strptime(text)


# Every year, 1 to 9999: format_time writes four digits (glibc's strftime would not before
# year 1000, and such a time did not read back).
@given(st.datetimes(timezones=st.just(UTC)))
def test_every_written_time_reads_back(moment: datetime) -> None:
    assert parse_time(format_time(moment)) == moment


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-28T05:00:00.000000Z",
        "2026-02-29T05:00:00.000000Z",  # not a leap year
        "2024-02-29T23:59:59.999999Z",
        "2026-11-28T05:00:60.000000Z",
        "2026-11-28T24:00:00.000000Z",
        "0000-01-01T00:00:00.000000Z",
        "2026-1-28T05:00:00.000000Z",  # strptime's own leniency stays as it was
        "2026-11-28T05:00:00.5Z",
        "\uff12\uff10\uff12\uff16-11-28T05:00:00.000000Z",  # full-width digits: strptime decides
        "2026-11-28T05:00:00.000000Z ",
        "2026-11-28 05:00:00.000000Z",
        "2026-11-28T05:00:00.000000",
    ],
)
def test_edge_spellings_read_as_strptime_reads_them(text: str) -> None:
    assert _parse(text) == _strptime(text)


@given(st.datetimes(timezones=st.just(UTC)))
def test_every_written_time_is_27_characters_as_strftime_spells_four_digit_years(
    moment: datetime,
) -> None:
    written = format_time(moment)
    assert len(written) == 27
    if moment.year >= 1000:
        assert written == moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
