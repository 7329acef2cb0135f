"""aiokafka's retry warnings are rate-limited, not allowed to flood the log."""

from __future__ import annotations

import logging

from broker.logging import RepeatFilter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _record(msg: str, name: str = "aiokafka.conn") -> logging.LogRecord:
    return logging.LogRecord(name, logging.WARNING, __file__, 1, msg, None, None)


def test_first_occurrence_of_a_message_is_written() -> None:
    assert RepeatFilter(10.0, Clock()).filter(_record("Unable connect to node"))


def test_repeat_within_the_interval_is_held_back() -> None:
    f = RepeatFilter(10.0, Clock())
    f.filter(_record("Unable connect to node"))
    assert not f.filter(_record("Unable connect to node"))


def test_repeat_after_the_interval_is_written_with_the_count_held_back() -> None:
    clock = Clock()
    f = RepeatFilter(10.0, clock)
    for _ in range(5):
        f.filter(_record("Unable connect to node"))
    clock.now = 11.0
    record = _record("Unable connect to node")
    assert f.filter(record)
    assert "and 4 more like it" in str(record.msg)


def test_different_messages_are_not_held_back_by_each_other() -> None:
    f = RepeatFilter(10.0, Clock())
    f.filter(_record("Unable connect to node"))
    assert f.filter(_record("Unable to update metadata"))
