"""`continuity prescribe` and `continuity summary` on a plain snapshot database."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import subprocess
from pathlib import Path

import nacl.public
import pytest
from click.testing import CliRunner

from continuity import journal as journal_module
from continuity import snapshot_build
from continuity.cli import cli
from continuity.model import Practice, Record
from tests.unit.pdf_fixtures import ald_summary, child, flat, pdf_text, practitioner, weight


def _records() -> list[Record]:
    adult = ald_summary()
    kid = child()
    return [
        Practice(id="cabinet-pentes", name="Cabinet médical des Pentes"),
        practitioner(),
        adult.patient,
        *adult.allergies,
        *adult.conditions,
        *adult.treatments,
        *adult.measurements,
        kid,
        weight(22.5, dt.date.today() - dt.timedelta(days=10), kid.id),
    ]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return snapshot_build.build_from_records(_records(), tmp_path / "s.db").path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def _prescribe(db: Path, home: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    return run("prescribe", "pat-1", "--db", str(db), "--home", str(home), "--user", "dr.lefevre",
               "--prescriber", "10101234567", "--out", str(out), *extra)  # fmt: skip


def test_renew_all_writes_a_bizone_ordonnance(db_path: Path, home: Path, tmp_path: Path) -> None:
    out = tmp_path / "ordonnance.pdf"
    code, stdout, stderr = _prescribe(db_path, home, out, "--renew", "all")
    assert code == 0, stderr
    assert f"enregistrée dans : {out}" in stdout and "bizone" in stdout
    assert "n'est pas journalisé" in stderr  # --db on a home without appliance key
    text = flat(" ".join(pdf_text(out.read_bytes(), tmp_path)))
    assert "AFFECTION EXONÉRANTE" in text and "MALADIES INTERCURRENTES" in text
    assert "metformine 1000 mg" in text and "Durée : 1 mois" in text


def test_renew_one_treatment_with_a_duration_and_a_new_line(db_path: Path, home: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.pdf"
    code, _, stderr = _prescribe(
        db_path, home, out, "--renew", "t-levo", "--duration", "3 mois",
        "--line", "paracétamol|500 mg|comprimé|1 comprimé si douleur, 3 par jour au plus|5j",
    )  # fmt: skip
    assert code == 0, stderr
    text = flat(pdf_text(out.read_bytes(), tmp_path)[0])
    assert "lévothyroxine sodique 75 µg, comprimé, voie orale" in text and "Durée : 3 mois" in text
    assert "paracétamol 500 mg, comprimé, voie orale" in text and "Durée : 5 jours" in text
    assert "metformine" not in text


def test_allergy_warning_stops_without_confirm_and_names_the_substance(
    db_path: Path, home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "o.pdf"
    line = "amoxicilline|1 g|comprimé|1 comprimé matin et soir|7j"
    code, stdout, stderr = _prescribe(db_path, home, out, "--line", line)
    assert code == 13
    assert "amoxicilline" in stderr and "Pénicillines" in stderr and "Confirmation nécessaire" in stderr
    assert not out.exists() and list(tmp_path.glob("o*.pdf")) == []
    code, _, stderr = _prescribe(db_path, home, out, "--line", line, "--confirm")
    assert code == 0, stderr
    assert "Confirmé : ALLERGIE" in stderr
    assert out.exists()


def test_refusal_cannot_be_confirmed_away(db_path: Path, home: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.pdf"
    code, _, stderr = _prescribe(db_path, home, out, "--line", "morphine|10 mg|gélule|1 matin et soir|7j", "--confirm")
    assert code == 12
    assert "ORDONNANCE SÉCURISÉE" in stderr and "morphine" in stderr
    assert not out.exists()


def test_duration_over_twelve_months_is_refused(db_path: Path, home: Path, tmp_path: Path) -> None:
    code, _, stderr = _prescribe(db_path, home, tmp_path / "o.pdf", "--renew", "all", "--duration", "13 mois")
    assert code == 12 and "12 mois" in stderr


def test_unknown_prescriber_and_treatment(db_path: Path, home: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "o.pdf")
    code, _, stderr = run("prescribe", "pat-1", "--db", str(db_path), "--home", str(home), "--user", "u",
                          "--prescriber", "99999999999", "--renew", "all", "--out", out)  # fmt: skip
    assert code == 5 and "99999999999" in stderr
    code, _, stderr = _prescribe(db_path, home, tmp_path / "o.pdf", "--renew", "t-nope")
    assert code == 5 and "t-nope" in stderr


def test_bad_line_and_nothing_to_prescribe_are_usage_errors(db_path: Path, home: Path, tmp_path: Path) -> None:
    code, _, stderr = _prescribe(db_path, home, tmp_path / "o.pdf", "--line", "amoxicilline seule")
    assert code == 2 and "ligne illisible" in stderr
    code, _, stderr = _prescribe(db_path, home, tmp_path / "o.pdf")
    assert code == 2 and "rien à prescrire" in stderr


def test_print_failure_keeps_the_pdf_and_says_where(db_path: Path, home: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.pdf"
    code, _, stderr = _prescribe(db_path, home, out, "--renew", "all", "--print", "--printer", "no-such-queue-x")
    assert code == 14
    assert "Impression impossible" in stderr and str(out) in flat(stderr)
    assert out.exists() and len(list(tmp_path.glob("o*.pdf"))) == 1


def test_prescription_is_journaled_with_sealed_details(db_path: Path, home: Path, tmp_path: Path) -> None:
    key = nacl.public.PrivateKey.generate()
    encoded = base64.b64encode(bytes(key.public_key)).decode()
    key_file = home / journal_module.APPLIANCE_PUBLIC_KEY_FILE
    key_file.write_text(f"{journal_module.APPLIANCE_PUBLIC_PREFIX}:{encoded}\n")
    out = tmp_path / "o.pdf"
    code, _, stderr = _prescribe(db_path, home, out, "--renew", "all", "--drill")
    assert code == 0, stderr
    entries = [e for e in journal_module.Journal(home).entries() if e.action == "drill_prescription"]
    assert len(entries) == 1
    payload = journal_module.read_prescription_payload(entries[0].open_sealed(key))
    assert payload["pdf_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert entries[0].user == "dr.lefevre" and entries[0].patient_id == "pat-1"
    assert "EXERCICE — NE PAS DÉLIVRER" in flat(pdf_text(out.read_bytes(), tmp_path)[0])


def test_summary_command(db_path: Path, home: Path, tmp_path: Path) -> None:
    out = tmp_path / "resume.pdf"
    code, stdout, stderr = run("summary", "pat-1", "--db", str(db_path), "--home", str(home), "--out", str(out))
    assert code == 0, stderr
    assert str(out) in stdout
    text = flat(pdf_text(out.read_bytes(), tmp_path)[0])
    assert "Cabinet médical des Pentes" in text and "Pénicillines" in text and "Diabète de type 2" in text


def test_written_pdf_is_private(db_path: Path, home: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.pdf"
    assert _prescribe(db_path, home, out, "--renew", "all")[0] == 0
    assert out.stat().st_mode & 0o777 == 0o600
    assert subprocess.run(["test", "-s", str(out)]).returncode == 0


def test_prescribe_through_the_unlocked_store_journals_sealed_to_the_appliance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.transport_helpers import PASSPHRASE, USER, make_rig, use_weak_kdf

    use_weak_kdf(monkeypatch)
    rig = make_rig(tmp_path)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    rig.ingest(rig.make(1, created_at=now - dt.timedelta(hours=2)), now=now)
    secret = tmp_path / "pass"
    secret.write_text(PASSPHRASE + "\n")
    out = tmp_path / "rousseau.pdf"
    code, stdout, stderr = run(
        "prescribe", "pat-qual", "--home", str(rig.home), "--user", USER, "--passphrase-file", str(secret),
        "--prescriber", "10001234567", "--renew", "all", "--out", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    assert "bizone" in stdout
    text = flat(pdf_text(out.read_bytes(), tmp_path)[0])
    assert "ROUSSEAU Jacques" in text and "Non substituable (MTE)" in text
    entries = [e for e in journal_module.Journal(rig.home).entries() if e.action == "print_prescription"]
    assert len(entries) == 1 and entries[0].user == USER
    payload = journal_module.read_prescription_payload(entries[0].open_sealed(rig.secrets.box_key))
    assert payload["pdf_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert [line["dci"] for line in payload["lines"]] == ["metformine", "lévothyroxine sodique"]


def test_wrong_passphrase_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.transport_helpers import USER, make_rig, use_weak_kdf

    use_weak_kdf(monkeypatch)
    rig = make_rig(tmp_path)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    rig.ingest(rig.make(1, created_at=now - dt.timedelta(hours=2)), now=now)
    secret = tmp_path / "pass"
    secret.write_text("pas la bonne\n")
    out = tmp_path / "o.pdf"
    code, _, _ = run(
        "prescribe", "pat-qual", "--home", str(rig.home), "--user", USER, "--passphrase-file", str(secret),
        "--prescriber", "10001234567", "--renew", "all", "--out", str(out),
    )  # fmt: skip
    assert code == 7
    assert not out.exists()


def test_preview_shows_the_text_and_the_warnings_and_writes_nothing(db_path: Path, home: Path, tmp_path: Path) -> None:
    code, stdout, stderr = run(
        "prescribe", "pat-1", "--db", str(db_path), "--home", str(home), "--user", "u", "--prescriber", "10101234567",
        "--renew", "all", "--line", "amoxicilline|1 g|comprimé|1 matin et soir|7j", "--preview",
    )  # fmt: skip
    assert code == 0, stderr
    assert "AFFECTION EXONÉRANTE" in stdout and "4. amoxicilline 1 g, comprimé, voie orale" in stdout
    assert "À confirmer : ALLERGIE" in stderr and "Pénicillines" in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "s.db"]
    assert list(home.iterdir()) == []


def test_out_is_required_without_preview(db_path: Path, home: Path) -> None:
    code, _, stderr = run("prescribe", "pat-1", "--db", str(db_path), "--home", str(home), "--user", "u",
                          "--prescriber", "10101234567", "--renew", "all")  # fmt: skip
    assert code == 2 and "--out" in stderr
