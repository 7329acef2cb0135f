"""A new operator, from an empty folder, with `msht` commands only: an operator key, the router's
keys, an agency's keys arriving as an export file, and a signed trust store that verifies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

MSHT = str(Path(sys.executable).parent / "msht")


def _msht(state: Path, *args: str, operator_key: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSHT_")}
    env["MSHT_STATE_DIR"] = str(state)
    if operator_key:
        env["MSHT_OPERATOR_KEY"] = operator_key
    done = subprocess.run(
        [MSHT, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"msht {' '.join(args)}: {done.stderr}"
    return done.stdout


def test_a_new_operator_reaches_keys_and_a_signed_trust_store_with_msht_alone(
    tmp_path: Path,
) -> None:
    operator, agency = tmp_path / "operator", tmp_path / "west-yorkshire"
    printed = _msht(operator, "keys", "generate", "--operator")
    (key_line,) = [x for x in printed.splitlines() if x.startswith("MSHT_OPERATOR_KEY=")]
    operator_key = key_line.split("=", 1)[1]
    _msht(operator, "keys", "generate", "--agency", "router", "--router")

    # The agency makes its keys on its own systems and sends only the public halves.
    _msht(agency, "keys", "generate", "--agency", "wyp")
    export = tmp_path / "wyp.keys.yaml"
    _msht(agency, "keys", "export", "--agency", "wyp", "--out", str(export))
    assert "PRIVATE" not in export.read_text()

    _msht(operator, "keys", "import", str(export))
    verified = _msht(operator, "trust", "verify", operator_key=operator_key)
    assert "version sha256:" in verified

    rows = json.loads(_msht(operator, "keys", "list", "-o", "json", "--expiring-days", "0"))
    assert sorted((r["agency"], r["use"], r["state"]) for r in rows) == [
        ("router", "encrypt", "valid"),
        ("router", "sign", "valid"),
        ("wyp", "encrypt", "valid"),
        ("wyp", "sign", "valid"),
    ]
    # The agency checks the copy it receives against the operator key it was given.
    (agency / "trust.yaml").write_bytes((operator / "trust.yaml").read_bytes())
    _msht(agency, "trust", "verify", operator_key=operator_key)
