"""``msht provision`` shows who may publish what."""

from __future__ import annotations

import io

from rich.console import Console

from broker.cli.provision import render_publishers
from tests.unit.policy_support import make, partner


def test_provision_lists_the_event_types_each_agency_may_originate() -> None:
    policy = make(
        [partner("met", originates=["case.charge", "referral.nrm"]), partner("cps")], []
    ).policy
    out = io.StringIO()
    render_publishers(policy, Console(file=out, width=200))
    text = out.getvalue()
    assert "case.charge, referral.nrm" in text
    assert "any (not restricted)" in text
