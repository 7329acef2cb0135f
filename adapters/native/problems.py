"""Turn pydantic's validation errors into problems a caseworker can act on.

pydantic reports ``('identity', 'date_of_birth')`` and ``date_from_datetime_parsing``; the
person fixing the form needs ``identity.date_of_birth: must be a date in YYYY-MM-DD form``.
Every adapter validates through :func:`validate` so every native format reports alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from broker.errors import FieldProblem, InputValidationError

M = TypeVar("M", bound=BaseModel)

_DATE = "must be a date in YYYY-MM-DD form, e.g. 2026-03-01"
_DATETIME = "must be a date and time in ISO 8601 form, e.g. 2026-03-01T14:30:00Z"

# Reasons that need no context from the error itself.
_FIXED_REASONS: dict[str, str] = {
    "missing": "is required but was not given",
    "extra_forbidden": "is not a field of this form (check the spelling, or remove it)",
    "date_type": _DATE,
    "date_parsing": _DATE,
    "date_from_datetime_parsing": _DATE,
    "date_from_datetime_inexact": _DATE,
    "datetime_type": _DATETIME,
    "datetime_parsing": _DATETIME,
    "datetime_from_date_parsing": _DATETIME,
    "timezone_aware": "must include a time zone, e.g. 2026-03-01T14:30:00Z",
    "bool_type": "must be yes or no (true/false)",
    "bool_parsing": "must be yes or no (true/false)",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "string_type": "must be text",
    "string_unicode": "must be text",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "dict_type": "must be a group of fields (a JSON object)",
    "model_type": "must be a group of fields (a JSON object)",
    "model_attributes_type": "must be a group of fields (a JSON object)",
    "none_required": "must be left empty",
    "uuid_type": "must be a UUID, e.g. 3f2b8c1e-5d6a-4b7c-9e8f-0a1b2c3d4e5f",
    "uuid_parsing": "must be a UUID, e.g. 3f2b8c1e-5d6a-4b7c-9e8f-0a1b2c3d4e5f",
}


def _reason(err: ErrorDetails) -> str:
    kind = err["type"]
    ctx: Mapping[str, Any] = err.get("ctx") or {}
    if kind in _FIXED_REASONS:
        return _FIXED_REASONS[kind]
    if kind in ("literal_error", "enum"):
        return f"must be one of {ctx.get('expected', 'the listed values')}"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "string_too_short":
        return (
            "must not be empty"
            if ctx.get("min_length") == 1
            else (f"must be at least {ctx.get('min_length')} characters")
        )
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} entries"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} entries"
    if kind == "string_pattern_mismatch":
        return "is not in the expected form"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = next(iter(ctx.values()), "?")
        words = {
            "greater_than_equal": "at least",
            "greater_than": "more than",
            "less_than_equal": "at most",
            "less_than": "less than",
        }
        return f"must be {words[kind]} {bound}"
    if kind in ("value_error", "assertion_error"):
        msg = err["msg"]
        for prefix in ("Value error, ", "Assertion failed, "):
            if msg.startswith(prefix):
                return msg[len(prefix) :]
        return msg
    return err["msg"][:1].lower() + err["msg"][1:]


def location(loc: Sequence[int | str]) -> str:
    """``('location', 'uk_towns', 3)`` as ``location.uk_towns[3]``; empty is ``(document)``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(document)"


def problems_from(
    exc: ValidationError, rename: Callable[[tuple[int | str, ...]], str] | None = None
) -> tuple[FieldProblem, ...]:
    """One :class:`FieldProblem` per pydantic error; ``rename`` maps a location (e.g. a column)."""
    out: list[FieldProblem] = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        where = rename(loc) if rename else location(loc)
        problem = FieldProblem(where, _reason(err))
        if problem not in out:
            out.append(problem)
    return tuple(out)


def validate(
    model: type[M],
    data: Any,
    what: str,
    rename: Callable[[tuple[int | str, ...]], str] | None = None,
) -> M:
    """Validate ``data`` as ``model``, or raise :class:`InputValidationError` naming every field.

    ``what`` names the document in the message ("NRM referral", "CSV row 4").
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InputValidationError(f"{what} is invalid", problems_from(exc, rename)) from exc


def invalid(what: str, where: str, reason: str) -> InputValidationError:
    """An :class:`InputValidationError` with a single problem."""
    return InputValidationError(f"{what} is invalid", [FieldProblem(where, reason)])
