"""Outage drill: a timed rehearsal (unlock, find the listed test patient, print a marked ordonnance) and its report.

A prescriber's drill prints the ordonnance through the one issuing path; a reception login, which never
issues ordonnances, prints the patient summary instead (the printout reception makes during an outage).

Everything a drill prints carries "EXERCICE — NE PAS DÉLIVRER" on every page (``pdf.render_prescription(
drill=True)``), its ordonnance is journaled as ``drill_prescription`` (never exported for
reconciliation), and the drill itself is journaled as ``drill`` with its timings and result. The
report holds no patient data: only the pseudonymous id of the test patient.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

from continuity import doctor
from continuity.errors import ContinuityError, JournalError, PrintError
from continuity.journal import PARIS, Action, Journal
from continuity.model import PrescriptionLine

if TYPE_CHECKING:
    from continuity.session import PatientView, Session

DRILL_MENTION: Final = "EXERCICE — NE PAS DÉLIVRER"
# A harmless line: the drill tests the chain (unlock → print), not a therapeutic decision.
DRILL_LINE: Final = PrescriptionLine(
    dci="paracétamol",
    strength="500 mg",
    form="comprimé",
    route="orale",  # a drill line must never ask for a route
    posology="EXERCICE — 1 comprimé si douleur, jusqu'à 3 par jour",
    duration_days=5,
)

Printer = Callable[[bytes, Path], str]  # (pdf, where to save it if printing fails) -> French outcome


@dataclasses.dataclass(slots=True)
class DrillStep:
    name_fr: str
    ok: bool
    seconds: float | None
    detail_fr: str


@dataclasses.dataclass(slots=True)
class DrillReport:
    started_at: dt.datetime
    user: str
    steps: list[DrillStep]
    patient_id: str | None = None
    time_to_first_patient: float | None = None
    printer: doctor.Check | None = None
    report_path: Path | None = None

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps) and (
            self.printer is None or self.printer.status is not doctor.Status.FAILED
        )

    @property
    def result_fr(self) -> str:
        return "réussi" if self.ok else "incomplet"

    def text(self) -> str:
        when = self.started_at.astimezone(PARIS).strftime("%d/%m/%Y à %H:%M")
        lines = [f"Exercice de mode dégradé du {when} — {self.user} — {self.result_fr.upper()}", ""]
        for step in self.steps:
            took = f" ({step.seconds:.1f} s)" if step.seconds is not None else ""
            lines.append(f"[{'OK' if step.ok else 'ÉCHEC':^5}] {step.name_fr}{took} — {step.detail_fr}")
        if self.time_to_first_patient is not None:
            lines.append(f"Temps jusqu'au premier dossier patient : {self.time_to_first_patient:.1f} s")
        if self.printer is not None:
            lines.append(f"Imprimante : {self.printer.status.label_fr} — {self.printer.detail_fr}")
            if self.printer.remedy_fr and self.printer.status is not doctor.Status.OK:
                lines.append(f"  À faire : {self.printer.remedy_fr}")
        if self.report_path is not None:
            lines.append(f"Rapport : {self.report_path}")
        return "\n".join(lines) + "\n"


def default_printer(pdf: bytes, save_to: Path) -> str:
    from continuity import printing

    return printing.print_pdf(pdf, save_to=save_to, title="Exercice").message_fr


def run_drill(
    unlock: Callable[[], Session],
    *,
    patient_search: str,
    out_dir: Path,
    printer: Printer = default_printer,
    printer_check: Callable[[], doctor.Check] = doctor.printer_check,
    with_report_pdf: bool = True,
) -> DrillReport:
    """Run the rehearsal end to end; a failing step is reported, never raised (except JournalError on unlock).

    Args:
        unlock: opens the session (the passphrase was asked by the caller); timed as the first step.
        patient_search: what the staff would type to find the listed test patient.
        out_dir: where the drill report goes, and the drill ordonnance if it cannot be printed.
    """
    started_at = dt.datetime.now(dt.UTC)
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    clock_start = time.monotonic()
    steps: list[DrillStep] = []

    def step(name: str, begin: float, ok: bool, detail: str) -> None:
        steps.append(DrillStep(name, ok, time.monotonic() - begin, detail))

    begin = time.monotonic()
    session = unlock()
    step("Ouverture de session", begin, True, "phrase de passe acceptée, données déchiffrées")
    report = DrillReport(started_at=started_at, user=session.user, steps=steps)
    journal = session.journal
    try:
        _rehearse(session, report, patient_search, out_dir, printer, step, clock_start)
    except JournalError:
        raise  # nothing may go on without the journal, not even a drill
    except ContinuityError as error:
        steps.append(DrillStep("Exercice interrompu", False, None, error.message_fr))
    finally:
        snapshot_line = _snapshot_line(session)
        session.lock(reason="drill")
    report.printer = printer_check()
    if with_report_pdf:
        report.report_path = _write_report_pdf(report, out_dir, snapshot_line)
    _journal_drill(journal, report)
    return report


def _rehearse(
    session: Session,
    report: DrillReport,
    patient_search: str,
    out_dir: Path,
    printer: Printer,
    step: Callable[[str, float, bool, str], None],
    clock_start: float,
) -> None:
    begin = time.monotonic()
    results = session.search(patient_search, limit=5)
    if not results:
        step("Recherche du patient test", begin, False, f"aucun patient trouvé pour « {patient_search} »")
        return
    patient_id = results[0].patient.id
    view = session.open_patient(patient_id)
    report.patient_id = patient_id
    report.time_to_first_patient = time.monotonic() - clock_start
    step("Recherche du patient test", begin, True, f"dossier {patient_id} ouvert")

    begin = time.monotonic()
    signer = session.signer()
    # A prescriber rehearses the ordonnance; reception, who never issues one, rehearses what it prints
    # during an outage: the patient summary. Both are marked on every page and journaled as drills.
    name = "Ordonnance d'exercice" if signer.is_prescriber else "Résumé d'exercice (accueil)"
    try:
        if signer.is_prescriber:
            # The same path as a real ordonnance (Session.issue_prescription), signed by the logged-in
            # prescriber. The drill line is harmless, and the warnings a real ordonnance would stop on are
            # acknowledged: the drill tests the chain, not a therapeutic decision.
            signing = session.signing(signer)
            plan = session.plan_prescription(view, signing, new_lines=[DRILL_LINE])
            issued = session.issue_prescription(plan, signing, acknowledged={w.code for w in plan.warnings},
                                                drill=True)
            document, kind = issued.pdf, "ordonnance"
        else:
            document, kind = _drill_summary(session, view), "resume"
    except JournalError:
        raise
    except ContinuityError as error:
        step(name, begin, False, error.message_fr)
        return
    step(name, begin, True, f"PDF de {len(document) // 1024} Ko marqué « {DRILL_MENTION} »")

    begin = time.monotonic()
    stamp = report.started_at.astimezone(PARIS).strftime("%Y%m%d-%H%M")
    try:
        outcome = printer(document, out_dir / f"exercice-{kind}-{stamp}.pdf")
    except PrintError as error:
        step("Impression", begin, False, error.message_fr)
        return
    step("Impression", begin, True, outcome)


def _drill_summary(session: Session, view: PatientView) -> bytes:
    """The patient summary marked as a drill, journaled before it is handed out."""
    import hashlib

    from continuity import pdf

    banner = session.banner()
    document = pdf.render_summary(view.summary, snapshot_created_at=banner.created_at,
                                  practice_name=banner.practice_name, drill=True)
    session.record_print(Action.PRINT_SUMMARY, view.summary.patient.id,
                         details={"pdf_sha256": hashlib.sha256(document).hexdigest(), "drill": True})
    return document


def _snapshot_line(session: Session) -> str:
    try:
        banner = session.banner()
    except ContinuityError:
        return "Exercice : données non disponibles."
    when = banner.created_at.astimezone(PARIS).strftime("%d/%m/%Y à %H:%M")
    return f"Exercice réalisé sur l'instantané n° {banner.sequence} du {when}."


def _write_report_pdf(report: DrillReport, out_dir: Path, snapshot_line: str) -> Path | None:
    from continuity import pdf

    if not (pdf.FORMS_DIR / "drill.html").exists():
        return None
    context = {
        "title": "Rapport d'exercice de mode dégradé",
        "report": report,
        "started_at": report.started_at.astimezone(PARIS).strftime("%d/%m/%Y à %H:%M"),
        "printer_label": report.printer.status.label_fr if report.printer else "non vérifié",
        "drill": True,
        "drill_mention": DRILL_MENTION,
        "snapshot_line": snapshot_line,
    }
    document = pdf.render_form("drill.html", context)
    path = out_dir / f"exercice-rapport-{report.started_at.astimezone(PARIS):%Y%m%d-%H%M%S}.pdf"
    path.write_bytes(document)
    return path


def _journal_drill(journal: Journal, report: DrillReport) -> None:
    journal.append(
        user=report.user,
        action=Action.DRILL,
        patient_id=report.patient_id,
        details={
            "result": "ok" if report.ok else "incomplete",
            "steps_failed": [step.name_fr for step in report.steps if not step.ok],
            "time_to_first_patient_s": round(report.time_to_first_patient, 2)
            if report.time_to_first_patient is not None
            else None,
            "printer_status": report.printer.status.value if report.printer else None,
            "report_file": report.report_path.name if report.report_path else None,
        },
    )
