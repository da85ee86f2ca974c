"""`publisher build` on the six real IPS bundles, read back through `search --json` and `show --json`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from continuity.cli import cli

IPS = Path(__file__).parents[1] / "data" / "fhir-ips"


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ips") / "ips.db"
    result = CliRunner().invoke(cli, ["publisher", "build", *map(str, sorted(IPS.glob("*.json"))), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "patient                      4" in result.stdout  # Martha DeLarosa's three bundles are one patient
    return out


def show(db_path: Path, name: str) -> dict[str, object]:
    runner = CliRunner()
    found = json.loads(runner.invoke(cli, ["search", "--db", str(db_path), "--json", name]).stdout)
    assert len(found) == 1, found
    return json.loads(runner.invoke(cli, ["show", "--db", str(db_path), "--json", found[0]["id"]]).stdout)  # type: ignore[no-any-return]


def substances(summary: dict[str, object], key: str, field: str) -> list[str]:
    items = summary[key]
    assert isinstance(items, list)
    return sorted(item[field] for item in items)


def test_hl7_ips_patient_merged_from_three_bundles(db_path: Path) -> None:
    summary = show(db_path, "delarosa martha")
    assert summary["patient"]["allergy_status"] == "recorded"  # type: ignore[index]
    assert substances(summary, "allergies", "substance") == [
        "Substance with penicillin structure and antibacterial mechanism of action (substance)"
    ]
    assert substances(summary, "treatments", "dci") == ["Cimicifugae rhizoma", "anastrozole"]
    assert substances(summary, "conditions", "text") == ["Malignant tumor of breast", "Menopausal flushing (finding)"]


def test_australian_bundle_negation_is_not_a_condition(db_path: Path) -> None:
    summary = show(db_path, "banks")
    assert summary["conditions"] == []  # "No current problems or disability" is a statement, not a problem
    assert substances(summary, "treatments", "dci") == ["Bisoprolol fumarate"]  # a contained Medication
    assert "Chlorhexidine" in substances(summary, "allergies", "substance")


def test_sections_with_only_an_empty_reason_mean_no_information(db_path: Path) -> None:
    summary = show(db_path, "judge")
    assert summary["patient"]["allergy_status"] == "no_information"  # type: ignore[index]
    assert summary["allergies"] == summary["treatments"] == summary["conditions"] == []


def test_eu_bundle_twelve_medications_through_medication_references(db_path: Path) -> None:
    summary = show(db_path, "mark john")
    assert len(summary["treatments"]) == 12  # type: ignore[arg-type]
    assert "levothyroxine sodium" in substances(summary, "treatments", "dci")
    assert substances(summary, "allergies", "substance") == ["Penicillins with extended spectrum"]
