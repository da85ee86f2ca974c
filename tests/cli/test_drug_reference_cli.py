"""`publisher build --drug-reference`: a good BDPM folder goes into the snapshot; a bad one is named and refused.

Issue 9, "Bad input": a missing file, a wrong encoding, a malformed line or an unknown column count gives an
error naming the file and the line; a malformed product line is reported and skipped, or fails the build with
--strict; a reference with zero products is refused. Nothing is written when the reference is refused.
The folder is the BDPM subset of tests/data/bdpm (real lines, see its SOURCES.md), damaged in tmp_path.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from continuity import snapshotdb
from continuity.cli import cli
from continuity.drugs import bdpm
from tests.prescribing_helpers import BDPM_FIXTURE

BUNDLE = Path(__file__).parents[1] / "data" / "fhir-ips" / "IPS_IG-bundle-01.json"


def build(out: Path, *extra: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["publisher", "build", str(BUNDLE), "--out", str(out), *extra])
    return result.exit_code, result.stdout, result.stderr


def damaged(tmp_path: Path) -> Path:
    folder = tmp_path / "bdpm"
    shutil.copytree(BDPM_FIXTURE, folder)
    return folder


def test_the_reference_goes_into_the_snapshot_and_its_skipped_lines_are_reported(tmp_path: Path) -> None:
    out = tmp_path / "s.db"
    code, _, stderr = build(out, "--drug-reference", str(BDPM_FIXTURE))
    assert code == 0, stderr
    assert "drug reference  39 products" in stderr
    # The real subset has one product whose three composition lines have 12 columns: named, skipped.
    assert "3 line(s) skipped, 1 product(s) left out (use --strict to refuse)" in stderr
    assert "CIS_COMPO_bdpm.txt" in stderr and "12 colonnes" in stderr
    database = snapshotdb.open_file(out)
    try:
        reference = database.drug_reference()
        assert reference is not None and reference.product_count() == 39
    finally:
        database.close()


def test_without_a_reference_the_output_says_the_fallback_list_is_used(tmp_path: Path) -> None:
    code, _, stderr = build(tmp_path / "s.db")
    assert code == 0, stderr
    assert "WARNING: no --drug-reference" in stderr and "liste intégrée" in stderr


def test_strict_fails_on_the_malformed_line_naming_file_and_line(tmp_path: Path) -> None:
    out = tmp_path / "s.db"
    code, _, stderr = build(out, "--drug-reference", str(BDPM_FIXTURE), "--strict")
    assert code != 0 and "CIS_COMPO_bdpm.txt, ligne 54" in stderr
    assert not out.exists()


@pytest.mark.parametrize("name", bdpm.FILES)
def test_a_missing_file_is_named_and_nothing_is_written(tmp_path: Path, name: str) -> None:
    folder = damaged(tmp_path)
    (folder / name).unlink()
    out = tmp_path / "s.db"
    code, _, stderr = build(out, "--drug-reference", str(folder))
    assert code != 0 and name in stderr and not out.exists()


def test_a_wrong_encoding_names_file_and_line(tmp_path: Path) -> None:
    folder = damaged(tmp_path)
    path = folder / bdpm.CONDITIONS_FILE
    lines = path.read_bytes().splitlines(keepends=True)
    lines[4] = lines[4].replace(b"liste", b"li\x81ste")  # undefined in cp1252, invalid in UTF-8
    path.write_bytes(b"".join(lines))
    out = tmp_path / "s.db"
    code, _, stderr = build(out, "--drug-reference", str(folder))
    assert code != 0 and "CIS_CPD_bdpm.txt, ligne 5" in stderr and not out.exists()


def test_an_unknown_column_count_names_file_and_line(tmp_path: Path) -> None:
    folder = damaged(tmp_path)
    path = folder / bdpm.CONDITIONS_FILE
    path.write_bytes(b"\r\n".join(line + b"\textra\tcolumns" for line in path.read_bytes().splitlines()))
    out = tmp_path / "s.db"
    code, _, stderr = build(out, "--drug-reference", str(folder))
    assert code != 0 and "CIS_CPD_bdpm.txt, ligne 1" in stderr and not out.exists()


def test_a_malformed_product_line_is_skipped_or_fails_with_strict(tmp_path: Path) -> None:
    folder = damaged(tmp_path)
    with (folder / bdpm.PRODUCTS_FILE).open("ab") as handle:
        handle.write("6123456X\tPRODUIT ABIMÉ 5 mg, comprimé\tcomprimé\torale\tAutorisation active\t\t"
                     "Commercialisée\t01/01/2020\t\t\t LABO\tNon\r\n".encode("cp1252"))
    code, _, stderr = build(tmp_path / "lenient.db", "--drug-reference", str(folder))
    assert code == 0, stderr
    assert "CIS_bdpm.txt" in stderr and "6123456X" in stderr
    strict = tmp_path / "strict.db"
    code, _, stderr = build(strict, "--drug-reference", str(folder), "--strict")
    assert code != 0 and "CIS_bdpm.txt, ligne 41" in stderr and not strict.exists()


def test_a_reference_with_zero_products_is_refused(tmp_path: Path) -> None:
    folder = damaged(tmp_path)
    (folder / bdpm.PRODUCTS_FILE).write_bytes(b"")
    out = tmp_path / "s.db"
    code, _, stderr = build(out, "--drug-reference", str(folder))
    assert code != 0 and not out.exists()
    assert "aucun médicament lisible" in stderr
