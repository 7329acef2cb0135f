"""structlog set-up: JSON lines when output is not a terminal, a readable console otherwise.

Log lines carry identifiers (event id, agency, partner, topic, reason) and never the content
of an event: victim and suspect personal data must not reach a log. Use
:func:`bind_event` in pipeline steps so every line names the event and agency.
"""

from __future__ import annotations

import logging
import sys
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


def configure_logging(level: str = "INFO", *, json: bool | None = None) -> None:
    """Configure structlog once per process; ``json`` defaults to "stderr is not a tty"."""
    use_json = (not sys.stderr.isatty()) if json is None else json
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _drop_personal_data,
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


def bind_event(logger: structlog.stdlib.BoundLogger, event_id: str, agency: str) -> Any:
    """A logger bound to one event: every line it writes names the event id and agency."""
    return logger.bind(event_id=event_id, agency=agency)
