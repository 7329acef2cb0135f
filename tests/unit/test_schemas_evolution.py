"""Schema versions, evolution (BACKWARD_TRANSITIVE) and sensitivity tags."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from broker.cli import main
from broker.events import codec
from broker.events.compat import check_registry
from broker.events.schemas import default_schema_dir, load_registry, registry, sensitive_paths
from tests.unit.event_samples import referral

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def test_v1_data_reads_as_v2_with_the_new_field_defaulted() -> None:
    v1 = registry().versions("Referral")[0]
    data = codec.encode(v1, referral())
    decoded = codec.decode(data)
    assert decoded.writer.version == 1
    assert decoded.reader.version == registry().current("Referral").version
    assert decoded.record["duplicate_of"] is None
    assert decoded.record["victim"]["forename"] == "Ana"


def test_v2_data_without_the_new_field_reads_in_v1_code() -> None:
    v1, v2 = registry().versions("Referral")[:2]
    data = codec.encode(v2, referral())
    decoded = codec.decode(data, v1)
    assert "duplicate_of" not in decoded.record
    assert decoded.record["referral_id"] == referral()["referral_id"]


def test_v2_data_with_the_new_field_set_reads_in_v1_code_without_it() -> None:
    v1, v2 = registry().versions("Referral")[:2]
    data = codec.encode(v2, referral(duplicate_of="earlier-id"))
    assert "duplicate_of" not in codec.decode(data, v1).record


def test_shipped_schemas_are_backward_transitive() -> None:
    assert check_registry(registry()) == []


def test_schemas_check_command_passes_on_the_shipped_schemas(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["schemas", "check"]) == 0
    assert "ok:" in capsys.readouterr().out


def _copy_with(tmp_path: Path, name: str, mutate: object) -> Path:
    target = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, target)
    doc = json.loads((target / "Referral.v2.avsc").read_text())
    mutate(doc)  # type: ignore[operator]
    (target / name).write_text(json.dumps(doc))
    return target


def test_field_added_without_default_is_a_break_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def add_required(doc: dict[str, Any]) -> None:
        doc["fields"].append({"name": "safe_word", "type": "string"})

    directory = _copy_with(tmp_path, "Referral.v3.avsc", add_required)
    assert main(["schemas", "check", "--dir", str(directory)]) == 1
    out = capsys.readouterr().out
    assert "safe_word: field added without a default" in out
    assert "v3 cannot read v1" in out
    assert "v3 cannot read v2" in out


def test_changed_field_type_is_a_break(tmp_path: Path) -> None:
    def retype(doc: dict[str, Any]) -> None:
        for f in doc["fields"]:
            if f["name"] == "referral_id":
                f["type"] = "int"

    problems = check_registry(load_registry(_copy_with(tmp_path, "Referral.v3.avsc", retype)))
    assert {(p.field, p.reason) for p in problems} == {
        ("referral_id", "type changed from string to int")
    }


def test_removed_enum_symbol_is_a_break(tmp_path: Path) -> None:
    def drop_symbol(doc: dict[str, Any]) -> None:
        for f in doc["fields"]:
            if f["name"] == "kind":
                f["type"]["symbols"] = ["NRM"]

    problems = check_registry(load_registry(_copy_with(tmp_path, "Referral.v3.avsc", drop_symbol)))
    assert [p.field for p in problems] == ["kind", "kind"]
    assert "DTN" in problems[0].reason


def test_every_person_identifier_carries_the_identity_tag() -> None:
    paths = sensitive_paths("Referral")
    for field in (
        "victim.forename",
        "victim.surname",
        "victim.aliases",
        "victim.date_of_birth",
        "victim.contact_details",
        "victim.addresses",
        "home_office_reference",
        "account",
        "exploiters[].details",
    ):
        assert "identity" in paths[field], field
    assert "victim.gender" not in paths
    assert "victim.nationality" not in paths


def test_case_and_alert_people_are_tagged_through_the_shared_person() -> None:
    assert "identity" in sensitive_paths("CaseUpdate")["defendants[].person.surname"]
    assert "identity" in sensitive_paths("Alert")["persons[].person.date_of_birth"]


def test_schemas_are_found_in_the_checkout() -> None:
    assert Path(str(default_schema_dir())).resolve() in (
        SCHEMAS.resolve(),
        (Path(__file__).resolve().parents[2] / "broker" / "_schemas").resolve(),
    )


def test_reference_to_an_undefined_type_is_a_config_error(tmp_path: Path) -> None:
    from broker.errors import ConfigError

    def dangling(doc: dict[str, Any]) -> None:
        doc["fields"].append(
            {"name": "x", "type": ["null", "org.msht.events.Nope"], "default": None}
        )

    with pytest.raises(ConfigError, match="Nope"):
        load_registry(_copy_with(tmp_path, "Referral.v3.avsc", dangling))


def test_schemas_list_command_prints_every_version_and_fingerprint(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["schemas", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    v2 = registry().versions("Referral")[1]
    assert f"org.msht.events.Referral\tv2\t{v2.fingerprint.hex()}" in lines
    assert len(lines) == sum(len(registry().versions(n)) for n in registry().names())


# Fingerprints partners have pinned: a shipped version's must never change. Editing a "doc"
# (as issue 13 did to Envelope.v1) leaves it alone, since the Parsing Canonical Form strips docs.
SHIPPED_FINGERPRINTS = {
    ("org.msht.events.AgeGroup", 1): "e3c98c3196e6b584",
    ("org.msht.events.Alert", 1): "5126307bb7792893",
    ("org.msht.events.CaseUpdate", 1): "0a58bf09d29cc0d8",
    ("org.msht.events.Envelope", 1): "620246e94e323dca",
    ("org.msht.events.ExploitationType", 1): "1235d3959ab0d528",
    ("org.msht.events.Header", 1): "8437bf1b5b3cdf09",
    ("org.msht.events.Location", 1): "f94ba24ced4065cc",
    ("org.msht.events.Markings", 1): "0f178ed8c17bf23f",
    ("org.msht.events.Person", 1): "81fe02fed6e7bfb7",
    ("org.msht.events.Referral", 1): "9777543bc3b2f342",
    ("org.msht.events.Referral", 2): "dae86b402e68a92f",
    ("org.msht.events.Signature", 1): "3d5126cb8d03e4cd",
}


@pytest.mark.parametrize(("name", "version"), sorted(SHIPPED_FINGERPRINTS))
def test_a_shipped_schema_versions_fingerprint_never_changes(name: str, version: int) -> None:
    found = registry().versions(name)[version - 1]
    assert found.fingerprint.hex() == SHIPPED_FINGERPRINTS[(name, version)]
