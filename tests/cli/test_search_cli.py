"""`continuity search` and `continuity show` on a plain snapshot database."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from continuity import snapshot_build
from continuity.cli import cli
from tests.factories import small_practice


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return snapshot_build.build_from_records(small_practice(dt.date.today()), tmp_path / "s.db").path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_search_json_gives_ids_that_show_accepts(db_path: Path) -> None:
    code, out, _ = run("search", "--db", str(db_path), "--json", "Martin")
    assert code == 0
    rows = json.loads(out)
    assert [r["id"] for r in rows] == ["pat-martin-1", "pat-martin-2", "pat-martinez"]
    assert rows[0]["birth_date"] == "1951-03-12"  # ISO 8601 in JSON
    assert rows[0]["homonyms"] == 1
    code, out, _ = run("show", "--db", str(db_path), "--json", rows[0]["id"])
    assert code == 0
    assert json.loads(out)["patient"]["birth_name"] == "MARTIN"


def test_search_text_shows_french_dates_and_homonym_warning(db_path: Path) -> None:
    code, out, _ = run("search", "--db", str(db_path), "martin", "marie")
    assert code == 0
    assert "MARTIN Marie — née le 12/03/1951" in out
    assert "Homonyme : vérifier la date de naissance" in out


def test_search_nothing_found(db_path: Path) -> None:
    code, out, _ = run("search", "--db", str(db_path), "zzz")
    assert code == 0 and "Aucun patient trouvé." in out


def test_show_text_has_allergies_ald_and_treatment_marks(db_path: Path) -> None:
    code, out, _ = run("show", "--db", str(db_path), "pat-qual")
    assert code == 0
    assert "ROUSSEAU Jacques — né le 12/03/1951 — Masculin" in out
    assert "INS 151037512345658" in out
    assert "ALLERGIES : Amoxicilline (Urticaire)" in out
    assert "[ALD] Diabète de type 2" in out
    assert "Non substituable (MTE)" in out


@pytest.mark.parametrize(
    ("patient_id", "headline"),
    [("pat-oeuvray", "Aucune allergie connue"), ("pat-ndiaye", "Allergies : information non disponible")],
)
def test_show_tells_no_known_allergy_from_no_information(db_path: Path, patient_id: str, headline: str) -> None:
    code, out, _ = run("show", "--db", str(db_path), patient_id)
    assert code == 0 and headline in out


def test_show_json_keeps_allergy_status_distinct(db_path: Path) -> None:
    statuses = {
        pid: json.loads(run("show", "--db", str(db_path), "--json", pid)[1])["patient"]["allergy_status"]
        for pid in ("pat-oeuvray", "pat-ndiaye", "pat-qual")
    }
    assert statuses == {"pat-oeuvray": "none_known", "pat-ndiaye": "no_information", "pat-qual": "recorded"}


def test_unknown_patient_exits_with_not_found_code(db_path: Path) -> None:
    code, _, err = run("show", "--db", str(db_path), "pat-nobody")
    assert code == 5
    assert "Patient introuvable" in err


def test_a_refused_database_gives_its_exit_code_and_a_french_message(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.db"
    bogus.write_bytes(b"this is not a database at all")
    code, _, err = run("search", "--db", str(bogus), "martin")
    assert code == 4
    assert "invalides" in err and "bad magic" in err


def test_show_and_summary_journal_the_access_before_reading(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from continuity import keys
    from continuity.journal import Journal

    monkeypatch.setenv(keys.WEAK_KDF_ENV, "1")
    home = tmp_path / "home"
    keys.init_appliance(home, "accueil", "une phrase assez longue")
    code, _, err = run("show", "--db", str(db_path), "--home", str(home), "--user", "accueil", "pat-qual")
    assert code == 0, err
    out = tmp_path / "resume.pdf"
    code, _, err = run("summary", "--db", str(db_path), "--home", str(home), "--user", "accueil",
                       "pat-ndiaye", "--out", str(out))
    assert code == 0, err
    actions = [(e.action, e.patient_id) for e in Journal(home).entries()]
    assert ("view_patient", "pat-qual") in actions
    assert actions.index(("view_patient", "pat-ndiaye")) < actions.index(("print_summary", "pat-ndiaye"))
    # Searching lists candidates without opening any record: nothing patient-specific is journaled.
    before = len(actions)
    run("search", "--db", str(db_path), "--home", str(home), "--user", "accueil", "martin")
    assert all(e.patient_id is None for e in list(Journal(home).entries())[before:])
