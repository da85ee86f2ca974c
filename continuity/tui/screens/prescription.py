"""Ordonnance: tick treatments to renew, add lines, pick the prescriber, read the preview, confirm, print.

The common case — renew everything the patient takes — is `o` on the patient screen (every ongoing
treatment is ticked and the preview shows exactly what will print), then Entrée: printed. Warnings
(allergy match, child without weight, deceased patient...) open a confirmation that takes a typed `o`,
not Entrée, so nobody confirms them by reflex. Refusals (secure-paper drugs, over 12 months, no RPPS)
leave nothing to print.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Select, SelectionList, Static
from textual.widgets.selection_list import Selection

from continuity import display, prescribe
from continuity.errors import ContinuityError, PrescriptionRefused
from continuity.model import Practitioner, PrescriptionLine, Treatment
from continuity.prescribe import PrescriptionPlan
from continuity.session import PatientView
from continuity.tui import printer
from continuity.tui.screens.base import SessionScreen
from continuity.tui.widgets.banner import Banner

LINE_SPEC_HELP = "DCI|dosage|forme|posologie|durée — ex. : paracétamol|1 g|comprimé|1 comprimé 3 fois par jour|5 j"


def new_prescription_id() -> str:
    return uuid.uuid4().hex


def treatment_label(treatment: Treatment) -> Text:
    text = Text(display.treatment_line(treatment))
    if treatment.narcotic:
        text.append("  — non imprimable ici", style="bold red")
    return text


@dataclass
class PrescriptionPrinted(Message):
    """Posted by the printing thread."""

    message_fr: str
    error: bool = False


class TreatmentList(SelectionList[str]):
    """Space ticks a treatment; Entrée goes on to printing rather than ticking."""

    BINDINGS = [Binding("enter", "screen.print", "Imprimer", show=False)]


class ConfirmPrint(ModalScreen[bool]):
    """The last look before printing: who, for whom, how many lines, and the warnings to confirm."""

    DEFAULT_CSS = """
    ConfirmPrint { align: center middle; }
    ConfirmPrint > Vertical { width: 76; max-width: 100%; height: auto; max-height: 90%;
        border: thick $accent; background: $surface; padding: 0 1; }
    ConfirmPrint .warnings { color: white; background: #b00020; text-style: bold; padding: 0 1; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Revenir"),
        Binding("enter", "confirm('enter')", "Imprimer", show=False),
        Binding("o", "confirm('o')", "Confirmer", show=False),
    ]

    def __init__(self, summary_text: str, warnings: tuple[str, ...]) -> None:
        super().__init__()
        self.summary_text = summary_text
        self.warnings = warnings

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.summary_text, markup=False)
            if self.warnings:
                yield Static("\n".join(f"⚠ {w}" for w in self.warnings), classes="warnings", markup=False)
                yield Static("o : je confirme et j'imprime — Échap : revenir", markup=False)
            else:
                yield Static("Entrée : imprimer — Échap : revenir", markup=False)

    def action_cancel(self) -> None:
        self.dismiss(False)

    def action_confirm(self, key: str) -> None:
        # Entrée confirms a plain ordonnance; with warnings only a typed "o" does.
        if (key == "o") == bool(self.warnings):
            self.dismiss(True)


class PrescriptionScreen(SessionScreen):
    SAFE_FOR_SWITCH = False  # a half-made ordonnance must not change under the doctor's eyes

    BINDINGS = [
        Binding("escape", "back", "Retour"),
        Binding("a", "add_line", "Ajouter une ligne"),
        Binding("m", "prescriber", "Prescripteur"),
        Binding("p", "print", "Imprimer"),
        Binding("pagedown", "preview(1)", "Aperçu ↓", show=False),
        Binding("pageup", "preview(-1)", "Aperçu ↑", show=False),
    ]

    DEFAULT_CSS = """
    #rx-new { display: none; }
    #rx-new.-shown { display: block; }
    """

    def __init__(self, view: PatientView, *, renew_all: bool = True,
                 id_factory: Callable[[], str] = new_prescription_id) -> None:
        super().__init__()
        self.view = view
        self.renew_all = renew_all
        self.prescription_id = id_factory()
        self.new_lines: list[PrescriptionLine] = []
        self.plan: PrescriptionPlan | None = None
        self.refusal = ""
        self._printing = False

    # -- layout

    def compose(self) -> ComposeResult:
        patient = self.view.summary.patient
        yield Banner()
        with Vertical(id="rx-top"):
            yield Static(f"Ordonnance pour {display.identity_line(patient)}", id="rx-patient", markup=False)
            yield Select(self._prescriber_options(), prompt="Prescripteur", allow_blank=False,
                         value=self._default_prescriber(), id="rx-prescriber")
            yield TreatmentList(*self._selections(), id="rx-treatments")
            yield Input(placeholder=LINE_SPEC_HELP, id="rx-new")
            yield Static("", id="rx-warnings", markup=False)
        with VerticalScroll(id="rx-preview-box"):
            yield Static("", id="rx-preview", markup=False)
        yield Footer()

    def _prescribers(self) -> list[Practitioner]:
        return sorted(self.view.practitioners.values(), key=lambda p: (p.family_name, p.id))

    def _prescriber_options(self) -> list[tuple[str, str]]:
        return [
            (p.display_name + ("" if p.rpps else " (sans RPPS)"), p.id) for p in self._prescribers()
        ] or [("Aucun praticien dans les données", "")]

    def _default_prescriber(self) -> str:
        gp = self.view.summary.general_practitioner
        if gp is not None and gp.rpps:
            return gp.id
        with_rpps = [p for p in self._prescribers() if p.rpps]
        chosen = with_rpps or self._prescribers()
        return chosen[0].id if chosen else ""

    def _selections(self) -> list[Selection[str]]:
        return [
            Selection(treatment_label(t), t.id, self.renew_all and not t.narcotic)
            for t in self.view.summary.treatments
        ]

    def on_mount(self) -> None:
        new_line = self.query_one("#rx-new", Input)
        if self.app.is_headless:
            new_line.cursor_blink = False
        treatments = self.query_one(TreatmentList)
        treatments.border_title = "Traitements à renouveler (Espace : cocher)"
        if not self.view.summary.treatments:
            treatments.display = False
            self._show_new_line()
        else:
            treatments.focus()
        self.query_one("#rx-preview-box").border_title = "Aperçu — ce qui sera imprimé"
        self.rebuild()

    # -- the plan

    def prescriber(self) -> Practitioner | None:
        value = self.query_one("#rx-prescriber", Select).value
        return self.view.practitioners.get(value) if isinstance(value, str) else None

    def rebuild(self) -> None:
        """Rebuild the plan from the ticks, the new lines and the prescriber; show preview and warnings."""
        self.plan = None
        self.refusal = ""
        warnings = self.query_one("#rx-warnings", Static)
        preview = self.query_one("#rx-preview", Static)
        prescriber = self.prescriber()
        ticked = list(self.query_one(TreatmentList).selected)
        if prescriber is None:
            self.refusal = "Choisissez le prescripteur (touche m)."
        elif not ticked and not self.new_lines:
            self.refusal = "Cochez au moins un traitement (Espace) ou ajoutez une ligne (touche a)."
        else:
            try:
                self.plan = prescribe.build(
                    self.view.summary, prescriber, renew=ticked, new_lines=self.new_lines,
                    now=self.session.now(), prescription_id=self.prescription_id,
                )
            except PrescriptionRefused as error:
                self.refusal = error.message_fr
            except ContinuityError as error:
                self.refusal = error.message_fr
        if self.plan is None:
            warnings.update(self.refusal)
            warnings.set_classes("-refused")
            warnings.display = True
            preview.update("")
            return
        lines = [f"⚠ {w}" for w in self.plan.warnings] + [f"ℹ {n}" for n in self.plan.notes]
        warnings.update("\n".join(lines))
        warnings.set_classes("-warnings" if self.plan.warnings else ("-notes" if lines else ""))
        warnings.display = bool(lines)
        # The rules of the preview must not wrap: as wide as the box (border, padding, scrollbar).
        width = max(40, min(78, self.app.size.width - 8))
        text = prescribe.preview_text(self.plan.prescription, snapshot_created_at=self._data_time(), width=width)
        preview.update(text)
        # The prescriber block is the same every time: open the preview on the patient and the lines.
        patient_row = next((i for i, line in enumerate(text.splitlines()) if line.startswith("Patient :")), 0)
        box = self.query_one("#rx-preview-box", VerticalScroll)
        self.call_after_refresh(box.scroll_to, y=max(0, patient_row - 1), animate=False)

    def _data_time(self) -> dt.datetime:
        return self.session.banner().created_at

    @on(SelectionList.SelectedChanged)
    def ticks_changed(self) -> None:
        self.rebuild()

    @on(Select.Changed, "#rx-prescriber")
    def prescriber_changed(self) -> None:
        if self.is_mounted:
            self.rebuild()

    # -- new lines

    def action_add_line(self) -> None:
        self._show_new_line()

    def _show_new_line(self) -> None:
        field = self.query_one("#rx-new", Input)
        field.add_class("-shown")
        field.focus()

    @on(Input.Submitted, "#rx-new")
    def line_submitted(self, event: Input.Submitted) -> None:
        treatments = self.query_one(TreatmentList)
        if not event.value.strip():
            # Entrée on an empty line: done adding lines.
            if treatments.display:
                treatments.focus()
            else:
                self.action_print()
            return
        try:
            line = prescribe.parse_line_spec(event.value)
        except ValueError as error:
            self.notify(str(error), severity="error", timeout=8)
            return
        self.new_lines.append(line)
        event.input.value = ""
        self.rebuild()
        self.notify(f"Ligne ajoutée : {line.dci}", timeout=4)
        if treatments.display:
            treatments.focus()

    def action_preview(self, pages: int) -> None:
        box = self.query_one("#rx-preview-box", VerticalScroll)
        box.scroll_relative(y=pages * max(1, box.size.height - 1), animate=False)

    def action_prescriber(self) -> None:
        self.query_one("#rx-prescriber", Select).focus()

    def action_back(self) -> None:
        if self.query_one("#rx-new", Input).has_focus and self.view.summary.treatments:
            self.query_one(TreatmentList).focus()
            return
        self.app.pop_screen()

    # -- printing

    def action_print(self) -> None:
        if self._printing:
            return
        if self.plan is None:
            self.notify(self.refusal or "Rien à imprimer.", severity="error", timeout=8)
            return
        if not self.plan.warnings:
            self._confirmed(True)  # the preview on screen is what prints: Entrée is the confirmation
            return
        prescription = self.plan.prescription
        summary = (
            f"Imprimer l'ordonnance de {display.identity_line(prescription.patient)}\n"
            f"Prescripteur : {prescription.prescriber.display_name}\n"
            f"{len(prescription.lines)} ligne(s)" + (" — ordonnance bizone (ALD)" if prescription.is_bizone else "")
        )
        self.app.push_screen(ConfirmPrint(summary, self.plan.warnings), self._confirmed)

    def _confirmed(self, confirmed: bool | None) -> None:
        if not confirmed or self.plan is None:
            return
        session = self.session
        prescription = prescribe.check_confirmed(self.plan, confirm=True)
        self._printing = True
        self.notify("Préparation de l'ordonnance…")
        self._print(prescription, self._data_time(), session.sequence, self.capp.print_directory)

    @work(thread=True, exclusive=True, group="prescription")
    def _print(self, prescription: object, created_at: dt.datetime, sequence: int | None,
               directory: Path | None) -> None:
        # A thread: rendering takes a moment. Journal first: nothing is printed that is not journaled.
        from continuity import pdf, printing
        from continuity.model import Prescription

        assert isinstance(prescription, Prescription)
        session = self.capp.session
        if session is None:
            return
        try:
            data = pdf.render_prescription(prescription, snapshot_created_at=created_at)
            prescribe.record_issued(session.journal, prescription, data, user=session.user, snapshot_seq=sequence)
        except ContinuityError as error:
            self.post_message(PrescriptionPrinted(f"Ordonnance non imprimée : {error.message_fr}", error=True))
            return
        try:
            save_to = printer.save_path(directory, f"ordonnance-{prescription.id[:8]}.pdf")
            job = printing.print_pdf(data, save_to=save_to, title="Ordonnance")
        except ContinuityError as error:  # PrintFailed says where the PDF was saved instead
            self.post_message(PrescriptionPrinted(error.message_fr, error=True))
            return
        except OSError as error:
            self.post_message(PrescriptionPrinted(f"Impression impossible : {error}", error=True))
            return
        self.post_message(PrescriptionPrinted(job.message_fr))

    @on(PrescriptionPrinted)
    def printed(self, message: PrescriptionPrinted) -> None:
        self._printing = False
        self.capp.printed.append(message.message_fr)
        if message.error:
            from continuity.tui.screens.dialogs import MessageScreen

            self.app.push_screen(MessageScreen("Impression impossible", message.message_fr))
            return
        self.notify(message.message_fr, timeout=10)
        self.app.pop_screen()
