"""Police native input → validated documents: NRM JSON, Duty to Notify JSON, bulk CSV, case JSON.

The bulk CSV export has one row per NRM referral with the columns in :data:`CSV_COLUMNS`
(documented in docs/ADAPTERS.md). List cells separate entries with ``;``; yes/no cells take
``yes``/``no`` (or ``true``/``false``). Rows are numbered as a spreadsheet shows them: the
header is row 1, the first referral row 2.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from adapters.native.case import CaseUpdateDocument
from adapters.native.documents import decode_text, load_json_object
from adapters.native.problems import location, problems_from, validate
from adapters.police.models import (
    DTN_CONSENT_FIELDS,
    DTN_IDENTIFYING_FIELDS,
    DutyToNotify,
    Exploitation,
    NrmReferral,
)
from adapters.protocol import ParsedItem, ParseResult, RejectedItem
from broker.errors import FieldProblem, InputValidationError

Path = tuple[str, ...]

CSV_COLUMNS: tuple[tuple[str, Path], ...] = (
    ("external_id", ("routing", "external_id")),
    ("kind", ("routing", "kind")),
    ("country", ("routing", "country")),
    ("age_now", ("age", "now")),
    ("age_during_exploitation", ("age", "during_exploitation")),
    ("wants_nrm", ("consent", "wants_nrm")),
    ("reason_not", ("consent", "reason_not")),
    ("needs_support", ("consent", "needs_support")),
    ("willing_to_cooperate", ("consent", "willing_to_cooperate")),
    ("forename", ("identity", "forename")),
    ("surname", ("identity", "surname")),
    ("aliases", ("identity", "aliases")),
    ("date_of_birth", ("identity", "date_of_birth")),
    ("gender", ("identity", "gender")),
    ("nationality", ("identity", "nationality")),
    ("second_nationality", ("identity", "second_nationality")),
    ("has_dependants", ("identity", "has_dependants")),
    ("interpreter_needed", ("identity", "interpreter_needed")),
    ("language", ("identity", "language")),
    ("phone", ("identity", "contacts", "phone")),
    ("phone_safe", ("identity", "contacts", "phone", "safe")),
    ("email", ("identity", "contacts", "email")),
    ("email_safe", ("identity", "contacts", "email", "safe")),
    ("address", ("identity", "contacts", "address")),
    ("address_safe", ("identity", "contacts", "address", "safe")),
    ("home_office_reference", ("identity", "home_office_reference")),
    ("exploitation", ("exploitation",)),
    ("exploitation_other_details", ("exploitation", "other_details")),
    ("where", ("location", "where")),
    ("uk_towns", ("location", "uk_towns")),
    ("countries", ("location", "countries")),
    ("addresses", ("location", "addresses")),
    ("account", ("narrative", "account")),
    ("exploitation_dates", ("narrative", "exploitation_dates")),
    ("last_contact", ("narrative", "last_contact")),
    ("exploiter_details", ("exploiters", "details")),
    ("exploiters_in_uk", ("exploiters", "in_uk")),
    ("other_victims", ("exploiters", "other_victims")),
    ("risk_of_further_exploitation", ("exploiters", "risk_of_further_exploitation")),
    ("indicators", ("exploiters", "indicators")),
    ("reported_to_police", ("police", "reported")),
    ("police_force", ("police", "force")),
    ("crime_reference", ("police", "crime_reference")),
    ("responder_organisation", ("first_responder", "organisation")),
    ("responder_name", ("first_responder", "name")),
    ("responder_role", ("first_responder", "role")),
    ("responder_phone", ("first_responder", "phone")),
    ("responder_email", ("first_responder", "email")),
    ("local_authority_contact", ("first_responder", "local_authority_contact")),
    ("classification", ("handling", "classification")),
    ("tlp", ("handling", "tlp")),
)
"""Bulk CSV columns, in export order, with the NRM form field each one fills."""

LIST_COLUMNS = frozenset({"aliases", "uk_towns", "countries", "addresses", "indicators"})
CONTACT_KINDS = ("phone", "email", "address")
EXPLOITATION_FLAGS: tuple[str, ...] = tuple(
    name for name in Exploitation.model_fields if name != "other_details"
)
_COLUMN_NAMES = frozenset(c for c, _ in CSV_COLUMNS)
_CSV_FIELD_LIMIT = 20_000


def parse_nrm_json(data: bytes) -> NrmReferral:
    """An NRM referral JSON document."""
    return validate(NrmReferral, load_json_object(data, "NRM referral"), "NRM referral")


def parse_case_json(data: bytes) -> CaseUpdateDocument:
    """A police case update JSON document (arrest, charge, file submitted ...)."""
    return validate(CaseUpdateDocument, load_json_object(data, "case update"), "case update")


def parse_dtn_json(data: bytes) -> DutyToNotify:
    """A Duty to Notify report; refused if it carries any identifying field (MSA 2015 s.52(3))."""
    doc = load_json_object(data, "Duty to Notify report")
    found = sorted(set(_identifying_paths(doc, (), DTN_IDENTIFYING_FIELDS)))
    consent = sorted(set(_identifying_paths(doc, (), DTN_CONSENT_FIELDS)))
    if found or consent:
        raise InputValidationError(
            "Duty to Notify report is refused: "
            + ("it claims consent" if consent and not found else "it identifies the person"),
            [
                FieldProblem(
                    where,
                    "must not be given: a Duty to Notify report for an adult who did not "
                    "consent carries no identifying information or linking reference "
                    "(Modern Slavery Act 2015 s.52(3))",
                )
                for where in found
            ]
            + [
                FieldProblem(
                    where,
                    "must not be given: a Duty to Notify report is for an adult who did not "
                    "consent (Modern Slavery Act 2015 s.52(3)); with consent, submit an NRM "
                    "referral",
                )
                for where in consent
            ],
        )
    return validate(DutyToNotify, doc, "Duty to Notify report")


def _identifying_paths(
    node: Any, path: tuple[int | str, ...], keys: frozenset[str]
) -> Iterator[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            here = (*path, str(key))
            if str(key).lower() in keys:
                yield location(here)
            else:
                yield from _identifying_paths(value, here, keys)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _identifying_paths(value, (*path, i), keys)


def parse_nrm_csv(data: bytes) -> ParseResult:
    """A bulk CSV export: valid rows are accepted, each bad row is rejected with its row number."""
    text = decode_text(data, "referral CSV")
    csv.field_size_limit(_CSV_FIELD_LIMIT)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise InputValidationError(
            "referral CSV is invalid", [FieldProblem("(header)", "the file is empty")]
        ) from None
    except csv.Error as exc:
        raise InputValidationError(
            "referral CSV is invalid", [FieldProblem("(header)", f"is not readable CSV ({exc})")]
        ) from exc
    _check_header(header)
    accepted: list[ParsedItem] = []
    rejected: list[RejectedItem] = []
    row_no = 1
    while True:
        row_no += 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            rejected.append(
                RejectedItem(row_no, _row_error(row_no, [FieldProblem("(row)", str(exc))]))
            )
            break
        _take_row(row_no, header, cells, accepted, rejected)
    return ParseResult(tuple(accepted), tuple(rejected))


def parse_nrm_rows(
    header: Sequence[str], rows: Sequence[Sequence[str]], first_row: int = 2
) -> ParseResult:
    """:func:`parse_nrm_csv` of rows a CSV reader has already read: ``header`` (the file's
    first row, as read) and ``rows``, the first of them the file's row ``first_row``.

    What a bulk CSV read as a stream hands over (adapters/intake/csvstream.py), so that a
    batch of rows is not written back as CSV text to be read again (issue 19). The same
    checks, problems and row numbers as :func:`parse_nrm_csv` of the same rows.
    """
    names = [h.strip() for h in header]
    _check_header(names)
    accepted: list[ParsedItem] = []
    rejected: list[RejectedItem] = []
    for row_no, cells in enumerate(rows, start=first_row):
        _take_row(row_no, names, list(cells), accepted, rejected)
    return ParseResult(tuple(accepted), tuple(rejected))


def _check_header(header: list[str]) -> None:
    unknown = [h for h in header if h not in _COLUMN_NAMES]
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if unknown or duplicated or not header:
        raise InputValidationError(
            "referral CSV is invalid",
            [
                FieldProblem(f"column {h!r}", "is not a column of the referral export")
                for h in unknown
            ]
            + [FieldProblem(f"column {h!r}", "appears more than once") for h in duplicated],
        )


def _take_row(
    row_no: int,
    header: list[str],
    cells: list[str],
    accepted: list[ParsedItem],
    rejected: list[RejectedItem],
) -> None:
    if not any(c.strip() for c in cells):
        return  # a blank row
    try:
        accepted.append(ParsedItem(row_no, _referral_from_row(row_no, header, cells)))
    except InputValidationError as exc:
        rejected.append(RejectedItem(row_no, exc))


def _row_error(row: int, problems: list[FieldProblem]) -> InputValidationError:
    return InputValidationError(f"CSV row {row} is invalid", problems)


def _referral_from_row(row: int, header: list[str], cells: list[str]) -> NrmReferral:
    if len(cells) != len(header):
        raise _row_error(
            row,
            [FieldProblem("(row)", f"has {len(cells)} cells but the header has {len(header)}")],
        )
    values = {h: c.strip() for h, c in zip(header, cells, strict=True) if c.strip()}
    doc: dict[str, Any] = {}
    pre: list[FieldProblem] = []
    for column, path in CSV_COLUMNS:
        value = values.get(column)
        if value is None or path[:2] == ("identity", "contacts") or column == "exploitation":
            continue
        _put(doc, path, [v.strip() for v in value.split(";") if v.strip()]
             if column in LIST_COLUMNS else value)  # fmt: skip
    contacts = [
        {"kind": kind, "value": values[kind], "safe_to_contact": values.get(f"{kind}_safe", "no")}
        for kind in CONTACT_KINDS
        if kind in values
    ]
    if contacts:
        _put(doc, ("identity", "contacts"), contacts)
    flags = [f.strip() for f in values.get("exploitation", "").split(";") if f.strip()]
    for flag in flags:
        if flag not in EXPLOITATION_FLAGS:
            pre.append(
                FieldProblem(
                    "exploitation", f"{flag!r} is not one of {', '.join(EXPLOITATION_FLAGS)}"
                )
            )
        else:
            _put(doc, ("exploitation", flag), True)
    doc.setdefault("exploitation", {})
    contact_kinds = [c["kind"] for c in contacts]

    def rename(loc: tuple[int | str, ...]) -> str:
        if loc[:2] == ("identity", "contacts") and len(loc) > 2 and isinstance(loc[2], int):
            kind = contact_kinds[loc[2]] if loc[2] < len(contact_kinds) else "phone"
            return f"{kind}_safe" if loc[3:4] == ("safe_to_contact",) else kind
        for n in range(len(loc), 0, -1):
            for column, path in CSV_COLUMNS:
                if tuple(str(p) for p in loc[:n]) == path:
                    return column
        return location(loc) if loc else "(row)"

    try:
        model = NrmReferral.model_validate(doc)
    except ValidationError as exc:
        raise _row_error(row, pre + list(problems_from(exc, rename))) from exc
    if pre:
        raise _row_error(row, pre)
    return model


def _put(doc: dict[str, Any], path: Path, value: Any) -> None:
    node = doc
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
