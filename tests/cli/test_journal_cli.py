"""`continuity journal ...`: verify exit codes, checkpoints on paper, export, access reports."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from continuity import journal as journal_module
from continuity import keys
from continuity.cli import cli
from continuity.errors import JournalBroken, JournalError
from continuity.journal import Action, Journal, prescription_payload
from tests.unit.journal_helpers import make_prescription

PASSPHRASE = "cheval agrafe batterie"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(keys.WEAK_KDF_ENV, "1")
    monkeypatch.delenv("CONTINUITY_HOME", raising=False)
    path = tmp_path / "home"
    keys.init_appliance(path, "dr.martin", PASSPHRASE, keys.WEAK_FOR_TESTS)
    journal = Journal(path)
    journal.append(user="dr.martin", action=Action.UNLOCK)
    for number in range(1, 4):
        prescription = make_prescription(number)
        journal.append(user="dr.martin", action=Action.VIEW_PATIENT, patient_id=prescription.patient.id)
        journal.append(
            user="dr.martin",
            action=Action.PRINT_PRESCRIPTION,
            patient_id=prescription.patient.id,
            snapshot_seq=4,
            sealed=prescription_payload(prescription, pdf_sha256="ef" * 32),
        )
    journal.append(user="accueil", action=Action.VIEW_PATIENT, patient_id="pat-0002")
    return path


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(cli, list(args), input=input, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_verify_ok(home: Path) -> None:
    code, out, _ = run("journal", "verify", "--home", str(home))
    assert code == 0
    assert out.startswith("OK")


def test_verify_broken_exit_code_and_place(home: Path) -> None:
    path = next((home / "journal").glob("*.jsonl"))
    lines = path.read_bytes().splitlines(keepends=True)
    del lines[2]
    path.write_bytes(b"".join(lines))
    code, out, err = run("journal", "verify", "--home", str(home))
    assert code == JournalBroken.exit_code
    assert "JOURNAL ROMPU" in out
    assert "ligne 3" in out
    assert "ligne 3" in err


def test_verify_unreadable_exit_code(home: Path) -> None:
    # Tests run as root, which reads through chmod: make the journal directory a file instead.
    target = home / "journal"
    for path in target.iterdir():
        path.unlink()
    target.rmdir()
    target.write_text("not a directory")
    code, _, err = run("journal", "verify", "--home", str(home))
    assert code == JournalError.exit_code
    assert "illisible" in err


def test_checkpoint_sign_print_and_paper_verify(home: Path) -> None:
    code, out, err = run(
        "journal", "checkpoint", "--home", str(home), "--user", "dr.martin", "--print", input=PASSPHRASE
    )
    assert code == 0, err
    assert re.search(r"Nombre d'entrées +: 8\n", out)
    assert "Point de contrôle signé : 8 entrées." in err
    command = next(line for line in out.splitlines() if line.startswith("Pour vérifier"))
    paper = command.split("--paper ")[1]
    assert run("journal", "verify", "--home", str(home), "--paper", paper)[0] == 0
    forged = paper[:-1] + ("0" if paper[-1] != "0" else "1")
    assert run("journal", "verify", "--home", str(home), "--paper", forged)[0] == JournalBroken.exit_code


def test_checkpoint_paper_copy_as_pdf(home: Path, tmp_path: Path) -> None:
    pypdf = pytest.importorskip("pypdf")
    assert run("journal", "checkpoint", "--home", str(home), "--user", "dr.martin", input=PASSPHRASE)[0] == 0
    target = tmp_path / "copie.pdf"
    code, _, err = run("journal", "checkpoint", "--home", str(home), "--pdf", str(target))
    assert code == 0, err
    text = " ".join(" ".join(page.extract_text().split()) for page in pypdf.PdfReader(target).pages)
    assert "Point de contrôle du journal" in text
    assert "Nombre d'entrées 8" in text
    assert keys.fingerprint(bytes(keys.appliance_verify_key(home))) in text


def test_checkpoint_wrong_passphrase(home: Path) -> None:
    code, _, err = run("journal", "checkpoint", "--home", str(home), "--user", "dr.martin", input="wrong passphrase!")
    assert code == keys.AuthenticationError.exit_code
    assert "Erreur" in err


def test_export_command(home: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "retour"
    today = dt.date.today().isoformat()
    code, out, err = run(
        "journal", "export", "--home", str(home), "--since", today, "--out", str(out_dir),
        "--user", "dr.martin", "--no-pdf", input=PASSPHRASE,
    )  # fmt: skip
    assert code == 0, err
    assert "données de patients en clair" in err
    assert "3 ordonnance(s) exportée(s)" in out
    written = sorted(path.name for path in out_dir.iterdir())
    assert len(written) == 2
    assert any(name.endswith(".fhir.json") for name in written)
    entries = list(Journal(home).entries())
    assert [entry.action for entry in entries[-2:]] == ["export", "checkpoint"]
    assert journal_module.verify_journal(home).ok


def test_access_by_patient_and_user(home: Path, tmp_path: Path) -> None:
    code, out, _ = run("journal", "access", "--home", str(home), "--patient", "pat-0002")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 3
    assert "dr.martin" in lines[0] and "a consulté le dossier pat-0002" in lines[0]
    assert "a imprimé une ordonnance pat-0002" in lines[1]
    assert "accueil" in lines[2]
    code, out, _ = run("journal", "access", "--home", str(home), "--user", "accueil", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(row["action"], row["patient"]) for row in rows] == [("view_patient", "pat-0002")]
    code, _, _ = run("journal", "access", "--home", str(home))
    assert code == 2


def test_access_lists_exports_that_included_the_patient(home: Path, tmp_path: Path) -> None:
    run(
        "journal", "export", "--home", str(home), "--since", dt.date.today().isoformat(),
        "--out", str(tmp_path / "x"), "--user", "dr.martin", "--no-pdf", input=PASSPHRASE,
    )  # fmt: skip
    _, out, _ = run("journal", "access", "--home", str(home), "--patient", "pat-0003")
    assert "a exporté les ordonnances" in out.splitlines()[-1]


def test_retention_command(home: Path) -> None:
    code, out, _ = run("journal", "retention", "--home", str(home), "--months", "12")
    assert code == 0
    assert "Aucun mois" in out


def test_export_since_a_time_of_day(home: Path, tmp_path: Path) -> None:
    later = (dt.datetime.now(journal_module.PARIS) + dt.timedelta(minutes=2)).strftime("%d/%m/%Y %H:%M")
    code, out, err = run(
        "journal", "export", "--home", str(home), "--since", later, "--out", str(tmp_path / "y"),
        "--user", "dr.martin", "--no-pdf", input=PASSPHRASE,
    )  # fmt: skip
    assert code == 0, err
    assert "0 ordonnance(s) exportée(s)" in out
    code, _, err = run("journal", "export", "--home", str(home), "--since", "hier", "--out", str(tmp_path / "z"),
                       "--user", "dr.martin")  # fmt: skip
    assert code == 2
    assert "AAAA-MM-JJ" in err


def test_drill_command_without_a_printer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.transport_helpers import PASSPHRASE as RIG_PASSPHRASE
    from tests.transport_helpers import USER, make_rig, use_weak_kdf

    use_weak_kdf(monkeypatch)
    rig = make_rig(tmp_path)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    rig.ingest(rig.make(1, created_at=now - dt.timedelta(hours=2)), now=now)
    # A CUPS with no queue, whatever the machine running the tests has.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("lp", "lpstat"):
        script = bin_dir / name
        script.write_text("#!/bin/sh\necho 'lpstat: No destinations added.' >&2\nexit 1\n")
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    secret = tmp_path / "pass"
    secret.write_text(RIG_PASSPHRASE + "\n")
    out = tmp_path / "drills"
    code, text, err = run(
        "drill", "--home", str(rig.home), "--user", USER, "--passphrase-file", str(secret),
        "--patient", "oeuvray", "--out", str(out),
    )  # fmt: skip
    assert code == 1, err
    assert "INCOMPLET" in text
    assert "[ÉCHEC] Impression" in text
    saved = sorted(path.name for path in out.iterdir())
    # A reception login rehearses the summary it would print (it never issues an ordonnance).
    assert any(name.startswith(("exercice-ordonnance-", "exercice-resume-")) for name in saved)
    assert any(name.startswith("exercice-rapport-") for name in saved)
    assert list(Journal(rig.home).entries())[-1].action == "drill"


def test_verify_and_doctor_json_for_monitoring(home: Path) -> None:
    code, out, _ = run("journal", "verify", "--home", str(home), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["ok"] is True
    assert report["entries"] == 8
    path = next((home / "journal").glob("*.jsonl"))
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[1:]))
    code, out, _ = run("journal", "verify", "--home", str(home), "--json")
    assert code == JournalBroken.exit_code
    assert json.loads(out)["problems"][0]["kind"] == "deleted"
    code, out, _ = run("doctor", "--home", str(home), "--json")
    checks = {row["name_fr"]: row for row in json.loads(out)}
    assert checks["Journal d'accès"]["status"] == "failed"
    assert code == 2  # monitoring-plugin CRITICAL: a check failed (doctor.exit_code)
