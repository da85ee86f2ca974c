"""Dossier patient: identity block, allergies first and unmissable, conditions, treatments, appointments."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Static

from continuity import display
from continuity.model import AllergyStatus, PatientSummary, Practitioner
from continuity.session import PatientView
from continuity.tui.screens.base import SessionScreen
from continuity.tui.widgets.banner import Banner
from continuity.tui.widgets.results import HOMONYM_WARNING


def allergy_class(summary: PatientSummary) -> str:
    if summary.allergies:
        return "-recorded"
    if summary.patient.allergy_status is AllergyStatus.NONE_KNOWN:
        return "-none-known"
    return "-no-information"


def identity_block(view: PatientView, today_text: str, age: str) -> str:
    patient = view.summary.patient
    lines = [f"{display.identity_line(patient)} ({age})"]
    status = display.IDENTITY_STATUS_FR[patient.identity_status]
    lines.append(f"Identité : {status}" + (f" — INS {patient.ins}" if patient.ins else ""))
    if view.homonyms:
        lines.append(f"⚠ {HOMONYM_WARNING} ({view.homonyms} autre(s) patient(s) du même nom)")
    if patient.deceased:
        lines.append("⚠ PATIENT DÉCÉDÉ")
    if patient.phones:
        lines.append("Téléphone : " + ", ".join(patient.phones))
    address = patient.address.one_line()
    if address:
        lines.append(f"Adresse : {address}")
    gp = view.summary.general_practitioner
    if gp is not None:
        lines.append(f"Médecin traitant : {gp.display_name}")
    return "\n".join(lines)


def prescriber_name(practitioners: dict[str, Practitioner], practitioner_id: str) -> str:
    found = practitioners.get(practitioner_id)
    return found.display_name if found else practitioner_id


def treatments_text(view: PatientView) -> str:
    treatments = view.summary.treatments
    if not treatments:
        return "Traitements en cours : aucun enregistré"
    lines = ["Traitements en cours :"]
    for treatment in treatments:
        line = f"• {display.treatment_line(treatment)}"
        if treatment.last_prescriber_id:
            line += f" — prescrit par {prescriber_name(view.practitioners, treatment.last_prescriber_id)}"
        lines.append(line)
    return "\n".join(lines)


def conditions_text(summary: PatientSummary) -> str:
    if not summary.conditions:
        return "Antécédents et pathologies : aucun enregistré"
    lines = ["Antécédents et pathologies :"]
    for condition in summary.conditions:
        onset = f" (depuis le {display.fr_date(condition.onset_date)})" if condition.onset_date else ""
        mark = "[ALD] " if condition.is_ald else ""
        lines.append(f"• {mark}{condition.text}{onset}")
    return "\n".join(lines)


def measures_text(summary: PatientSummary) -> str:
    parts = []
    for kind, label in (("weight", "Poids"), ("height", "Taille")):
        measure = summary.latest(kind)
        if measure is not None:
            parts.append(f"{label} : {measure.value:g} {measure.unit} (le {display.fr_date(measure.measured_on)})")
    return " — ".join(parts) if parts else "Poids et taille : non renseignés"


def prescriptions_text(view: PatientView) -> str:
    recent = view.summary.recent_prescriptions
    if not recent:
        return "Prescriptions récentes : aucune"
    lines = ["Prescriptions récentes :"]
    for item in recent:
        who = prescriber_name(view.practitioners, item.prescriber_id) if item.prescriber_id else ""
        lines.append(f"• {display.fr_date(item.authored_on)} {item.text}" + (f" — {who}" if who else ""))
    return "\n".join(lines)


def appointments_text(view: PatientView) -> str:
    appointments = view.summary.appointments
    if not appointments:
        return "Rendez-vous à venir : aucun"
    lines = ["Rendez-vous à venir :"]
    for appointment in appointments:
        who = prescriber_name(view.practitioners, appointment.practitioner_id)
        text = f"• {display.fr_datetime(appointment.start)} avec {who}"
        if appointment.description:
            text += f" — {appointment.description}"
        lines.append(text)
    return "\n".join(lines)


class PatientScreen(SessionScreen):
    BINDINGS = [
        Binding("escape", "back", "Retour"),
        Binding("o", "prescribe", "Ordonnance"),
        Binding("p", "print_summary", "Imprimer le résumé"),
        Binding("down", "scroll(1)", show=False),
        Binding("up", "scroll(-1)", show=False),
    ]

    def __init__(self, view: PatientView) -> None:
        super().__init__()
        self.view = view

    @property
    def patient_id(self) -> str:
        return self.view.summary.patient.id

    def compose(self) -> ComposeResult:
        yield Banner()
        with VerticalScroll(id="patient-body"):
            yield Static(id="identity", markup=False)
            yield Static(id="allergies", markup=False)
            yield Static(id="conditions", classes="section", markup=False)
            yield Static(id="treatments", classes="section", markup=False)
            yield Static(id="measures", classes="section", markup=False)
            yield Static(id="prescriptions", classes="section", markup=False)
            yield Static(id="appointments", classes="section", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_view()
        self.query_one("#patient-body").focus()

    def refresh_view(self) -> None:
        view = self.view
        summary = view.summary
        today = self.session.today()
        identity = self.query_one("#identity", Static)
        identity.update(identity_block(view, display.fr_date(today), display.age_label(summary.patient, today)))
        identity.set_class(bool(view.homonyms), "-homonym")
        allergies = self.query_one("#allergies", Static)
        headline = display.allergy_headline(summary)
        if summary.allergies:
            details = [
                f"  • {a.substance}"
                + (f" — réaction : {a.reaction}" if a.reaction else "")
                + (" — SÉVÈRE" if a.criticality == "high" else "")
                for a in summary.allergies
            ]
            headline = "⚠ " + headline + "\n" + "\n".join(details)
        allergies.update(headline)
        for name in ("-recorded", "-none-known", "-no-information"):
            allergies.set_class(name == allergy_class(summary), name)
        self.query_one("#conditions", Static).update(conditions_text(summary))
        self.query_one("#treatments", Static).update(treatments_text(view))
        self.query_one("#measures", Static).update(measures_text(summary))
        self.query_one("#prescriptions", Static).update(prescriptions_text(view))
        self.query_one("#appointments", Static).update(appointments_text(view))

    def action_scroll(self, step: int) -> None:
        body = self.query_one("#patient-body", VerticalScroll)
        body.scroll_relative(y=step, animate=False)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_prescribe(self) -> None:
        self.capp.open_prescription(self.view)

    def action_print_summary(self) -> None:
        self.capp.print_summary(self.view)

    def snapshot_switched(self) -> None:
        super().snapshot_switched()
        self.capp.reload_patient(self)
