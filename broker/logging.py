"""structlog set-up: JSON lines when output is not a terminal, a readable console otherwise.

Log lines carry identifiers (event id, agency, partner, topic, reason) and never the content
of an event: victim and suspect personal data must not reach a log.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import structlog

_FORBIDDEN_KEYS = frozenset(
    {
        "payload",
        "name",
        "forename",
        "surname",
        "date_of_birth",
        "dob",
        "address",
        "phone",
        "email",
        "narrative",
        "person",
        "victim",
        "suspect",
        "body",
        "raw",
    }
)


def _drop_personal_data(
    _logger: Any, _method: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    """Last line of defence: a key that could carry personal data is replaced, not logged."""
    for key in list(event_dict):
        if key.lower() in _FORBIDDEN_KEYS:
            event_dict[key] = "[withheld]"
    return event_dict


def _stderr_logger(*_args: Any) -> structlog.PrintLogger:
    return structlog.PrintLogger(file=sys.stderr)


class RepeatFilter(logging.Filter):
    """Lets the same message (logger and format string) through at most once per ``seconds``.

    While Kafka is unreachable, aiokafka logs "Unable connect to node" on every retry —
    tens of thousands of identical lines a minute — which would bury everything else an
    operator needs to read. The first line of each kind is kept, then one per interval
    saying how many were held back.
    """

    def __init__(self, seconds: float = 10.0, clock: Any = None) -> None:
        super().__init__()
        self._seconds = seconds
        self._clock = clock or time.monotonic
        self._last: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether ``record`` is written (it gets a note of the repeats held back)."""
        key = (record.name, str(record.msg))
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._seconds:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held:
            record.msg = f"{record.msg} (and {held} more like it in the last {self._seconds:.0f}s)"
        return True


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is written (pytest swaps it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


_THIRD_PARTY = ("aiokafka", "kafka", "confluent_kafka")
"""Loggers of the Kafka clients: rate-limited, WARNING and above (their INFO is chatter)."""


def _shared_processors() -> list[structlog.types.Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _drop_personal_data,
    ]


def _stdlib_formatter(renderer: structlog.types.Processor) -> structlog.stdlib.ProcessorFormatter:
    """Renders a stdlib record (aiokafka's, confluent-kafka's, asyncio's) as our own lines
    are rendered: one JSON object when logging to a file or pipe."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *_shared_processors()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )


def _route_stdlib(renderer: structlog.types.Processor) -> None:
    """Send every stdlib logger's records through structlog's renderer (idempotent: the
    handlers installed by an earlier call are replaced, so the format follows the latest
    configuration)."""
    formatter = _stdlib_formatter(renderer)
    for name in (*_THIRD_PARTY, ""):
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
            logger.removeHandler(old)
        handler = _StderrHandler()
        handler.setFormatter(formatter)
        if name:
            handler.addFilter(RepeatFilter())
            logger.setLevel(logging.WARNING)
            logger.propagate = False
        elif logger.level == logging.NOTSET or logger.level > logging.WARNING:
            logger.setLevel(logging.WARNING)
        logger.addHandler(handler)


def configure_logging(level: str = "INFO", *, json: bool | None = None) -> None:
    """Configure structlog once per process; ``json`` defaults to "stderr is not a tty".

    Third-party libraries' stdlib log records (aiokafka, confluent-kafka, asyncio) are
    rendered by the same processors (JSON lines, personal-data keys withheld); aiokafka's
    are rate-limited, see :class:`RepeatFilter`.
    """
    use_json = (not sys.stderr.isatty()) if json is None else json
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    _route_stdlib(renderer)
    structlog.configure(
        processors=[
            *_shared_processors(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        # Resolved at each call, not once: whatever sys.stderr is *now* (pytest swaps it).
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A logger for module ``name``."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
