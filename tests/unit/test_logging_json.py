"""Every log line is JSON when logging to a file or pipe, third-party libraries' included."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from broker.logging import configure_logging, get_logger


@pytest.fixture
def json_logging() -> Iterator[None]:
    configure_logging(json=True)
    yield
    configure_logging()


@pytest.mark.parametrize("name", ["aiokafka.conn", "confluent_kafka", "asyncio", "some.library"])
def test_a_third_party_warning_is_one_json_object(
    json_logging: None, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    logging.getLogger(name).warning("Unable connect to node with id %s", 1)
    [line] = capsys.readouterr().err.splitlines()
    record = json.loads(line)
    assert record["event"] == "Unable connect to node with id 1"
    assert record["logger"] == name
    assert record["level"] == "warning"
    assert "timestamp" in record


def test_a_third_party_records_personal_data_key_is_withheld(
    json_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logging.getLogger("asyncio").error("failed", extra={"payload": "Jane Doe"})
    out = capsys.readouterr().err
    assert "Jane Doe" not in out


def test_our_own_lines_are_json_with_personal_data_withheld(
    json_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    get_logger("broker.test").info("hello", surname="Doe")
    record = json.loads(capsys.readouterr().err)
    assert record["surname"] == "[withheld]"


def test_kafka_client_info_chatter_is_not_logged(
    json_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logging.getLogger("aiokafka.consumer").info("joined group")
    assert capsys.readouterr().err == ""


def test_configuring_twice_installs_one_handler_per_logger() -> None:
    configure_logging(json=True)
    configure_logging(json=True)
    for name in ("aiokafka", "confluent_kafka", ""):
        own = [h for h in logging.getLogger(name).handlers if type(h).__name__ == "_StderrHandler"]
        assert len(own) == 1, name
