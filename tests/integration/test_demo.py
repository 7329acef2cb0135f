"""`msht demo` runs the whole exchange on the real broker, as `make demo` does.

The demo runs once for the module, as a user runs it (the venv's ``msht``, a subprocess),
into a temporary folder with ``--cleanup``; each test checks one thing it must show.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from broker.kafka import clients as kafka
from broker.settings import Settings

REPO = Path(__file__).resolve().parents[2]
MSHT = Path(sys.executable).parent / "msht"


@dataclass(frozen=True)
class DemoRun:
    """What one run printed and left behind."""

    code: int
    output: str
    directory: Path
    run_id: str


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """Run ``msht demo --dir <tmp> --cleanup`` once."""
    base = tmp_path_factory.mktemp("demo")
    directory = base / "demo"
    env = {**os.environ, "MSHT_STATE_DIR": str(base), "COLUMNS": "200"}
    done = subprocess.run(
        [str(MSHT), "demo", "--dir", str(directory), "--cleanup"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = done.stdout + done.stderr
    found = re.search(r"run (demo-\d{14}-[0-9a-f]{4})", output)
    assert found, f"no run id in the demo's output:\n{output}"
    return DemoRun(done.returncode, output, directory, found.group(1))


def _outbox(demo: DemoRun, partner: str) -> list[Path]:
    folder = demo.directory / "outbox" / partner
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_demo_exits_zero_with_the_audit_chain_verified(demo: DemoRun) -> None:
    assert demo.code == 0, demo.output
    assert "audit trail intact" in demo.output
    assert "router signatures checked against" in demo.output


def test_every_view_verifies_against_the_originating_agencys_signature(demo: DemoRun) -> None:
    # Checked by each subscriber from the view alone (#20); the count is every view rendered.
    found = re.search(r"originating agency's signature: (\d+) of (\d+)", demo.output)
    assert found, demo.output
    verified, total = int(found[1]), int(found[2])
    assert verified == total > 0


def test_cps_outbox_holds_the_charge_as_cps_xml(demo: DemoRun) -> None:
    documents = [p.read_text() for p in _outbox(demo, "cps") if p.suffix == ".xml"]
    assert any("<CaseUpdate>" in d and "<Update>charge</Update>" in d for d in documents)


def test_police_outbox_holds_the_cps_charging_decision(demo: DemoRun) -> None:
    documents = [p.read_text() for p in _outbox(demo, "met-police")]
    assert any('"charging_decision"' in d for d in documents)


def test_dutch_liaison_point_receives_the_alert_with_identity(demo: DemoRun) -> None:
    [alert] = _outbox(demo, "ilo-nl")
    text = alert.read_text()
    assert "<UMFMessage" in text
    assert "Epsilon" in text  # the suspect's family name: adequacy allows identity


def test_third_country_liaison_point_receives_nothing_its_transfer_is_held(demo: DemoRun) -> None:
    assert _outbox(demo, "ilo-xx") == []
    assert "held guard:hold-dpa-s76 special_circumstances" in demo.output


def test_summary_names_the_held_h3_alert(demo: DemoRun) -> None:
    lines = [
        line
        for line in demo.output.splitlines()
        if "alert.inbound" in line and "guard:hold-h3" in line and "held" in line
    ]
    assert lines, demo.output
    assert "SIENA H3" in lines[0]


def _reviewed(demo: DemoRun, verb: str, partner: str) -> str:
    """The short id of the event the demo's reviewer released or refused for ``partner``."""
    found = re.search(rf"duty-officer {verb} hold \S+ \(alert\.inbound (\w+) from ilo-nl, "
                      rf"guard:hold-h3\) for {partner}:", demo.output)  # fmt: skip
    assert found, demo.output
    return found.group(1)


def test_the_duty_officer_releases_the_held_alert_for_the_nca_which_receives_it_once(
    demo: DemoRun,
) -> None:
    short = _reviewed(demo, "releases", "nca")
    assert len([p for p in _outbox(demo, "nca") if p.name.startswith(short)]) == 1
    assert re.search(
        rf"{short}.*alert\.inbound.*ilo-nl.*nca.*release.*duty-officer.*delivered \(1x rendered\)",
        demo.output,
    )


def test_the_duty_officer_refuses_the_held_alert_for_the_police_which_never_receives_it(
    demo: DemoRun,
) -> None:
    short = _reviewed(demo, "refuses", "met-police")
    assert [p for p in _outbox(demo, "met-police") if p.name.startswith(short)] == []
    assert re.search(
        rf"{short}.*alert\.inbound.*ilo-nl.*met-police.*refuse.*duty-officer.*never delivered",
        demo.output,
    )


def test_the_dutch_liaison_point_is_told_held_released_and_refused(demo: DemoRun) -> None:
    folder = demo.directory / "outbox" / "_notices" / "ilo-nl"
    notices = [json.loads(p.read_text())["review_notice"] for p in sorted(folder.iterdir())]
    assert sorted((n["status"], tuple(n["partners"])) for n in notices) == [
        ("held", ("met-police", "nca")),
        ("refused", ("met-police",)),
        ("released", ("nca",)),
    ]


def test_the_transfer_held_for_the_third_country_stays_open(demo: DemoRun) -> None:
    assert re.search(r"alert\.outbound.*nca.*ilo-xx.*open.*msht held list", demo.output)


def test_summary_names_the_quarantined_forgery(demo: DemoRun) -> None:
    assert re.search(r"forged: forged-charging-decision\.xml.*unverified", demo.output)


def test_summary_lists_rejected_rows_with_field_and_reason(demo: DemoRun) -> None:
    assert re.search(r"referrals-with-bad-rows\.csv\s*│\s*5\s*│\s*forename", demo.output)


async def test_cleanup_leaves_no_topic_of_the_run(demo: DemoRun, settings: Settings) -> None:
    async with kafka.admin_client(settings) as admin:
        left = [t for t in await admin.list_topics() if t.startswith(f"{demo.run_id}.")]
    assert left == []
