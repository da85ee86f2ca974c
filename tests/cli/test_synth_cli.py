"""`continuity publisher synth`: writes the export and prints the counts."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from continuity.cli import cli
from continuity.synth import RESOURCE_TYPES


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["publisher", "synth", *args])
    return result.exit_code, result.output


def test_synth_writes_one_file_per_type_and_prints_counts(tmp_path: Path) -> None:
    out = tmp_path / "export"
    code, output = run("--patients", "120", "--seed", "5", "--out", str(out), "--today", "2026-11-30")
    assert code == 0, output
    for kind in RESOURCE_TYPES:
        lines = (out / f"{kind}.ndjson").read_text(encoding="utf-8").splitlines()
        (count_line,) = [line for line in output.splitlines() if line.split()[0] == kind]
        assert int(count_line.split()[-1]) == len(lines)
    assert "Patient" in output and "120" in output
    first = json.loads((out / "Appointment.ndjson").read_text(encoding="utf-8").splitlines()[0])
    assert first["start"].startswith("2026-11-30T")


def test_synth_is_deterministic_from_the_command_line(tmp_path: Path) -> None:
    for name in ("a", "b"):
        code, output = run("--patients", "60", "--seed", "9", "--out", str(tmp_path / name), "--today", "2026-01-05")
        assert code == 0, output
    for kind in RESOURCE_TYPES:
        assert (tmp_path / "a" / f"{kind}.ndjson").read_bytes() == (tmp_path / "b" / f"{kind}.ndjson").read_bytes()


def test_synth_rejects_bad_options(tmp_path: Path) -> None:
    code, output = run("--patients", "3", "--out", str(tmp_path))
    assert code == 2 and "--patients" in output
    code, output = run("--out", str(tmp_path), "--today", "28/11/2026")
    assert code == 2 and "--today" in output
    code, output = run("--patients", "100")
    assert code == 2 and "--out" in output
