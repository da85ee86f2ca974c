"""The drill: a timed rehearsal on a real unlocked home, its marked ordonnance, report and journal entry."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from continuity import doctor, drill, reconcile
from continuity.errors import PrintError
from continuity.journal import Journal, verify_journal
from continuity.session import Session, fixed_clock
from tests.prescribing_helpers import PRESCRIBER, PRESCRIBER_PASSPHRASE, with_prescriber
from tests.transport_helpers import NOW, PASSPHRASE, USER, Rig, make_rig, use_weak_kdf

pypdf = pytest.importorskip("pypdf")


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Rig:
    use_weak_kdf(monkeypatch)
    made = make_rig(tmp_path)
    with_prescriber(made)
    made.ingest(made.make(1))
    return made


class Paper:
    """A printer that keeps what it was sent."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def __call__(self, pdf: bytes, save_to: Path) -> str:
        self.sent.append(pdf)
        return "Envoyé à l'imprimante « Accueil » (travail Accueil-1)."


def ok_printer() -> doctor.Check:
    return doctor.Check("Imprimante", doctor.Status.OK, "system default destination: Accueil")


def unlock(rig: Rig) -> Session:
    """The prescriber's login: a drill ordonnance is signed by the logged-in prescriber."""
    return Session.unlock(rig.home, PRESCRIBER, PRESCRIBER_PASSPHRASE, clock=fixed_clock(NOW))


def unlock_reception(rig: Rig) -> Session:
    return Session.unlock(rig.home, USER, PASSPHRASE, clock=fixed_clock(NOW))


def pages_text(pdf: bytes, tmp_path: Path) -> list[str]:
    path = tmp_path / "read.pdf"
    path.write_bytes(pdf)
    return [" ".join((page.extract_text() or "").split()) for page in pypdf.PdfReader(path).pages]


def test_a_full_drill(rig: Rig, tmp_path: Path) -> None:
    paper = Paper()
    report = drill.run_drill(
        lambda: unlock(rig),
        patient_search="oeuvray",
        out_dir=tmp_path / "drills",
        printer=paper,
        printer_check=ok_printer,
    )
    assert report.ok, report.text()
    assert report.patient_id == "pat-oeuvray"
    assert report.time_to_first_patient is not None
    assert [step.name_fr for step in report.steps] == [
        "Ouverture de session",
        "Recherche du patient test",
        "Ordonnance d'exercice",
        "Impression",
    ]
    # The printed ordonnance is marked on every page.
    assert len(paper.sent) == 1
    for text in pages_text(paper.sent[0], tmp_path):
        assert "EXERCICE" in text
        assert "NE PAS DÉLIVRER" in text
    # The report: marked too, and no patient name in it.
    assert report.report_path is not None
    report_pages = pages_text(report.report_path.read_bytes(), tmp_path)
    assert all("EXERCICE" in text for text in report_pages)
    assert "RÉUSSI" in report_pages[0]
    for marker in ("ŒUVRAY", "Zoé", "01/01/2001"):
        assert marker not in " ".join(report_pages)
    actions = [(entry.action, entry.patient_id) for entry in Journal(rig.home).entries()]
    assert actions == [
        ("unlock", None),
        ("checkpoint", None),
        ("search", None),  # searches are journaled too (issue 13)
        ("view_patient", "pat-oeuvray"),
        ("drill_prescription", "pat-oeuvray"),
        ("lock", None),
        ("checkpoint", None),
        ("drill", "pat-oeuvray"),
    ]
    last = list(Journal(rig.home).entries())[-1]
    assert last.details["result"] == "ok"
    assert last.details["report_file"] == report.report_path.name
    assert verify_journal(rig.home).ok
    # A drill ordonnance is never part of the reconciliation.
    found, skipped = reconcile.collect(Journal(rig.home), rig.secrets.box_key, dt.date(2000, 1, 1))
    assert found == []
    assert skipped == []


def test_a_reception_drill_prints_the_marked_summary_not_an_ordonnance(rig: Rig, tmp_path: Path) -> None:
    paper = Paper()
    report = drill.run_drill(lambda: unlock_reception(rig), patient_search="oeuvray", out_dir=tmp_path / "drills",
                             printer=paper, printer_check=ok_printer, with_report_pdf=False)
    assert report.ok, report.text()
    assert [step.name_fr for step in report.steps][2:] == ["Résumé d'exercice (accueil)", "Impression"]
    (document,) = paper.sent
    texts = pages_text(document, tmp_path)
    assert all("EXERCICE" in text for text in texts) and "Résumé" in texts[0]
    actions = [entry.action for entry in Journal(rig.home).entries()]
    assert "print_summary" in actions and "drill_prescription" not in actions
    summary_entry = next(e for e in Journal(rig.home).entries() if e.action == "print_summary")
    assert summary_entry.details["drill"] is True


def test_a_failed_print_makes_the_drill_incomplete(rig: Rig, tmp_path: Path) -> None:
    def jammed(pdf: bytes, save_to: Path) -> str:
        raise PrintError("lp failed", message_fr="Impression impossible : l'imprimante est arrêtée.")

    failing = doctor.Check("Imprimante", doctor.Status.FAILED, "arrêtée", "cupsenable Accueil")
    report = drill.run_drill(
        lambda: unlock(rig),
        patient_search="oeuvray",
        out_dir=tmp_path / "drills",
        printer=jammed,
        printer_check=lambda: failing,
        with_report_pdf=False,
    )
    assert not report.ok
    assert report.steps[-1].name_fr == "Impression"
    assert not report.steps[-1].ok
    assert "INCOMPLET" in report.text()
    assert "cupsenable" in report.text()
    last = list(Journal(rig.home).entries())[-1]
    assert last.action == "drill"
    assert last.details["result"] == "incomplete"
    assert last.details["steps_failed"] == ["Impression"]


def test_no_test_patient_is_reported(rig: Rig, tmp_path: Path) -> None:
    report = drill.run_drill(
        lambda: unlock(rig),
        patient_search="zzzz inexistant",
        out_dir=tmp_path / "drills",
        printer=Paper(),
        printer_check=ok_printer,
        with_report_pdf=False,
    )
    assert not report.ok
    assert "aucun patient trouvé" in report.steps[-1].detail_fr
    assert report.patient_id is None
