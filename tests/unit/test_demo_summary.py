"""The demo's summary shows each partner's outcome, the reasons, quarantine and rejections."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from broker.demo.observed import (
    Observed,
    QuarantinedInput,
    RejectedInput,
    RenderedFile,
    missing,
)
from broker.demo.summary import print_summary
from broker.types import Outcome
from tests.unit.test_demo_observed import (
    PARTNERS,
    REVIEWER,
    TOPIC,
    _intact,
    _outcome,
    _published,
    _record,
    _reviewed,
)


def _printed(observed: Observed, tmp_path: Path, width: int = 200) -> str:
    console = Console(record=True, width=width, color_system=None)
    print_summary(
        console, observed, directory=tmp_path, signed_by="checked", problems=missing(observed)
    )
    return console.export_text()


def _observed(tmp_path: Path) -> Observed:
    observed = Observed(partners=PARTNERS)
    observed.published += [
        _published("e1111111-charge", 0),
        _published("h2222222-alert", 1, "alert.inbound"),
        _published("f3333333-forged", 2, forged=True, file="forged.xml"),
    ]
    observed.audit += [
        _record(
            "e1111111-charge",
            0,
            _outcome("cps", Outcome.DELIVER, "case-updates", "full"),
            _outcome("ilo-nl", Outcome.WITHHOLD, "not-subscribed"),
            _outcome("ilo-xx", Outcome.WITHHOLD, "guard:dpa-s73"),
        ),
        _record(
            "h2222222-alert",
            1,
            _outcome("cps", Outcome.HELD, "guard:hold-h3"),
            _outcome("ilo-nl", Outcome.WITHHOLD, "not-subscribed"),
            _outcome("ilo-xx", Outcome.WITHHOLD, "not-subscribed"),
        ),
        _record("f3333333-forged", 2, kind="quarantine"),
    ]
    observed.quarantined.append(QuarantinedInput(TOPIC, 2, "unverified", "wrong key"))
    observed.rejected.append(
        RejectedInput("met-police", "bad.csv", 3, "invalid", "date_of_birth", "not a date")
    )
    path = tmp_path / "outbox" / "cps" / "e1111111-charge.xml"
    observed.rendered.append(
        RenderedFile(
            "cps", "e1111111-charge", "case.charge", "cps-xml", path, "originator and router"
        )
    )
    observed.chain = _intact(3)
    return observed


def test_each_partner_cell_says_delivered_withheld_or_held(tmp_path: Path) -> None:
    text = _printed(_observed(tmp_path), tmp_path)
    charge = next(line for line in text.splitlines() if line.startswith("│ e1111111"))
    assert "✓ full" in charge
    assert "✗ dpa-s73" in charge
    alert = next(line for line in text.splitlines() if line.startswith("│ h2222222"))
    assert "⏸ held" in alert


def test_reasons_name_the_rule_but_not_unsubscribed_partners(tmp_path: Path) -> None:
    text = _printed(_observed(tmp_path), tmp_path)
    assert "guard:hold-h3" in text
    assert "guard:dpa-s73" in text
    assert "not-subscribed" not in text


def test_quarantine_rejections_and_outbox_are_listed(tmp_path: Path) -> None:
    text = _printed(_observed(tmp_path), tmp_path)
    assert "forged: forged.xml" in text
    assert "unverified" in text
    assert "date_of_birth" in text
    assert "not a date" in text
    assert "outbox/cps/e1111111-charge.xml" in text
    assert "audit trail intact: 3 records" in text
    assert "views verified against the originating agency's signature: 1 of 1" in text


def test_what_did_not_happen_is_listed_at_the_end(tmp_path: Path) -> None:
    observed = _observed(tmp_path)
    observed.rendered.clear()
    text = _printed(observed, tmp_path)
    assert "demo incomplete: 1 thing(s) did not happen" in text
    assert "cps's subscriber never rendered event e1111111-charge" in text


def test_a_narrow_console_lists_one_outcome_line_per_partner(tmp_path: Path) -> None:
    text = _printed(_observed(tmp_path), tmp_path, width=100)
    assert "cps: ✓ full" in text
    assert "ilo-xx: ✗ dpa-s73" in text
    assert "ilo-nl: " not in text  # not subscribed: left out


def test_the_review_table_shows_each_hold_released_refused_or_open(tmp_path: Path) -> None:
    observed = _reviewed()
    observed.published.append(_published("o1", 1, "alert.outbound", agency="nca"))
    observed.audit.append(_record("o1", 1, _outcome("ilo-xx", Outcome.HELD, "guard:hold-dpa-s76")))
    text = _printed(observed, tmp_path)
    review = text[text.index("what the reviewers decided") : text.index("Status notices")]
    rows = [line for line in review.splitlines() if line.startswith("│ ")]
    released = next(line for line in rows if "│ cps" in line)
    refused = next(line for line in rows if "│ ilo-xx" in line and "h1" in line)
    still = next(line for line in rows if line.startswith("│ o1"))
    assert "release" in released
    assert REVIEWER in released
    assert "delivered (1x rendered)" in released
    assert "refuse" in refused
    assert "never delivered" in refused
    assert "open" in still


def test_the_partner_matrix_shows_what_the_reviewer_decided_after_the_hold(
    tmp_path: Path,
) -> None:
    text = _printed(_reviewed(), tmp_path)
    matrix = text[: text.index("Withheld and held")]
    assert "→ ✓ released by" in matrix
    assert "→ ✗ refused by" in matrix


def test_the_notices_each_sender_received_are_listed(tmp_path: Path) -> None:
    text = _printed(_reviewed(), tmp_path)
    notices = text[text.index("Status notices") : text.index("Quarantined inputs")]
    assert [line.split("│")[3].strip() for line in notices.splitlines() if "│ ilo-nl" in line] == [
        "held",
        "released",
        "refused",
    ]
