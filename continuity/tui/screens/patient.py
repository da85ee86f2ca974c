"""Dossier patient: identity header (with the weight), allergies unmissable, treatments, conditions, appointments.

At 80×24 the identity, the allergies and the first treatments fit without scrolling: the header is
kept to a few lines (the weight with its date and age, the phone beside the GP) and the
treatments come right after the allergies.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Static

from continuity import display, flags
from continuity.model import AllergyStatus, PatientSummary, Practitioner
from continuity.session import PatientView
from continuity.tui.screens.base import SessionScreen
from continuity.tui.widgets.banner import Banner
from continuity.tui.widgets.results import HOMONYM_WARNING


def allergies_text(summary: PatientSummary) -> str:
    """The allergy block: the headline, then each allergy with its reaction, severity and flags."""
    headline = display.allergy_headline(summary)
    if not summary.allergies:
        return headline
    details = [
        f"  • {allergy.substance}"
        + (f" — réaction : {allergy.reaction}" if allergy.reaction else "")
        + (" — SÉVÈRE" if allergy.criticality == "high" else "")
        + display.flag_marks(allergy.flags)
        for allergy in summary.allergies
    ]
    return "⚠ " + headline + "\n" + "\n".join(details)


def allergy_class(summary: PatientSummary) -> str:
    if summary.allergies:
        return "-recorded"
    if summary.patient.allergy_status is AllergyStatus.NONE_KNOWN:
        return "-none-known"
    return "-no-information"


def weight_line(summary: PatientSummary, today: dt.date) -> str:
    """'Poids : 83,4 kg, le 23/12/2023 — il y a 3 ans', then the height; a child's stale weight is flagged.

    How old a child's weight may be comes from the prescription rules (prescribing/rules.py), so the screen
    warns exactly when an ordonnance would.
    """
    weight, height = summary.latest("weight"), summary.latest("height")
    text = f"Poids : {display.measure_line(weight, today)}" if weight else "Poids : non renseigné"
    if height is not None:
        text += f" ; taille : {display.fr_number(height.value)} {height.unit}"
    warning = child_weight_warning(summary, today)
    return text + (f"\n⚠ {warning}" if warning else "")


def child_weight_warning(summary: PatientSummary, today: dt.date) -> str:
    """For a child, a weight missing or older than the rules allow, in words; '' otherwise."""
    # Imported here: the prescribing side is not needed to show the unlock screen (app start).
    from continuity.prescribing import rules

    patient = summary.patient
    age = patient.age_on(today)
    if age is None or age >= rules.ADULT_AGE:
        return ""
    limit = rules.INFANT_WEIGHT_MAX_DAYS if age < rules.INFANT_AGE else rules.CHILD_WEIGHT_MAX_DAYS
    weight = summary.latest("weight")
    months = max(1, round(limit / 30.5))
    child = f"enfant de {display.age_label(patient, today)}"
    if weight is None or weight.measured_on is None:
        return f"Aucun poids daté pour cet {child} : pesez-le avant toute prescription."
    if (today - weight.measured_on).days > limit:
        return (f"Poids de plus de {months} mois pour cet {child} : pesez-le avant toute prescription "
                "(la posologie en dépend).")
    return ""


def identity_block(view: PatientView, today: dt.date) -> str:
    patient = view.summary.patient
    lines = [f"{display.identity_line(patient)} ({display.age_label(patient, today)})"]
    if patient.deceased:
        lines.append(f"⚠ PATIENT {display.deceased_label(patient)}")
    lines += [f"⚠ {label[:1].upper()}{label[1:]}" for label in flags.labels_fr(patient.flags)]
    status = display.IDENTITY_STATUS_FR[patient.identity_status]
    lines.append(f"Identité : {status}" + (f" — INS {patient.ins}" if patient.ins else ""))
    if view.homonyms:
        others = display.plural(view.homonyms, "autre patient", "autres patients")
        lines.append(f"⚠ {HOMONYM_WARNING} ({others} du même nom)")
    lines.append(weight_line(view.summary, today))
    contact = []
    if patient.phones:
        contact.append("Tél. " + ", ".join(display.fr_phone(phone) for phone in patient.phones))
    gp = view.summary.general_practitioner
    if gp is not None:
        contact.append(f"Médecin traitant : {gp.display_name}")
    if contact:
        lines.append(" — ".join(contact))
    address = patient.address.one_line()
    if address:
        lines.append(f"Adresse : {address}")
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
        lines.append(line + display.flag_marks(treatment.flags))
    return "\n".join(lines)


def conditions_text(summary: PatientSummary) -> str:
    if not summary.conditions:
        return "Antécédents et pathologies : aucun enregistré"
    lines = ["Antécédents et pathologies :"]
    for condition in summary.conditions:
        onset = f" (depuis le {display.fr_date(condition.onset_date)})" if condition.onset_date else ""
        mark = "[ALD] " if condition.is_ald else ""
        lines.append(f"• {mark}{condition.text}{onset}{display.flag_marks(condition.flags)}")
    return "\n".join(lines)


def printed_here_lines(view: PatientView) -> list[str]:
    """Ordonnances already printed here during the outage (the journal's, not in the snapshot)."""
    if view.printed_here is None:
        return ["⚠ Impossible de vérifier dans le journal les ordonnances déjà imprimées pendant la panne."]
    return [
        f"⚠ Ordonnance déjà imprimée ici pendant la panne : le {display.fr_datetime(item.at)} par {item.user}"
        f" ({display.plural(item.line_count, 'ligne', 'lignes')})"
        for item in view.printed_here
    ]


def prescriptions_text(view: PatientView) -> str:
    recent = view.summary.recent_prescriptions
    here = printed_here_lines(view)
    if not recent:
        return "\n".join([*here, "Prescriptions récentes : aucune"])
    lines = [*here, "Prescriptions récentes :"]
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
            yield Static(id="treatments", classes="section", markup=False)
            yield Static(id="conditions", classes="section", markup=False)
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
        identity.update(identity_block(view, today))
        identity.set_class(bool(view.homonyms), "-homonym")
        identity.set_class(summary.patient.deceased, "-deceased")
        allergies = self.query_one("#allergies", Static)
        allergies.update(allergies_text(summary))
        for name in ("-recorded", "-none-known", "-no-information"):
            allergies.set_class(name == allergy_class(summary), name)
        self.query_one("#conditions", Static).update(conditions_text(summary))
        self.query_one("#treatments", Static).update(treatments_text(view))
        self.query_one("#prescriptions", Static).update(prescriptions_text(view))
        self.query_one("#appointments", Static).update(appointments_text(view))

    def on_screen_resume(self) -> None:
        # Back from an ordonnance (or an unlock): what was printed meanwhile is listed at once.
        session = self.capp.session
        if session is None:
            return
        printed_here = session.printed_here(self.patient_id)
        if printed_here != self.view.printed_here:
            self.view = dataclasses.replace(self.view, printed_here=printed_here)
            self.query_one("#prescriptions", Static).update(prescriptions_text(self.view))

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
