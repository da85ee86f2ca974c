"""Ordonnance: the lines to renew or add, ticked with visible marks, the preview, the acknowledgements, printing.

The common case — renew every continuous treatment — is `o` on the patient screen (those lines are
ticked "[✓]", the preview shows exactly what will print), then Entrée. Lines a renewal must not take
by itself are shown unticked "[ ]" with the reason beside them: narcotics (secure paper) and hospital
products cannot be ticked at all; acute courses, unidentified substances and treatments of unknown
status can be, on purpose. Added lines are listed too, and can be unticked or removed (Suppr).

Dangers (allergy, unidentified substance, homonym, deceased, child weight...) are acknowledged one by
one in a dialog, each by typing what it asks (the first letters of the drug concerned, the birth year
for an identity), never by the key that prints. Refusals leave nothing to print. Everything goes
through `Session.plan_prescription` and `Session.issue_prescription`, the path the CLI and the drill
take too.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Footer, Input, OptionList, Static
from textual.widgets.option_list import Option

from continuity import display
from continuity.drugs import text as drug_text
from continuity.drugs.reference import DrugReference
from continuity.errors import ContinuityError, NotAllowed
from continuity.model import PrescriptionLine, Treatment
from continuity.prescribing import printed, rules
from continuity.prescribing.issuing import SigningChoice
from continuity.prescribing.rules import Alert, Danger, PrescriptionPlan
from continuity.session import PatientView
from continuity.tui.screens.base import SessionScreen
from continuity.tui.widgets.banner import Banner

TICKED = "[✓]"
UNTICKED = "[ ]"
# Routes offered when neither the reference nor the form settles one (the BDPM's names).
COMMON_ROUTES = ("orale", "cutanée", "sous-cutanée", "intramusculaire", "intraveineuse", "ophtalmique",
                 "nasale", "inhalée", "rectale", "vaginale", "sublinguale", "transdermique", "auriculaire")


def new_prescription_id() -> str:
    return uuid.uuid4().hex


@dataclass
class Row:
    """One line of the list: an ongoing treatment, or a line the prescriber added."""

    ticked: bool
    treatment: Treatment | None = None
    line: PrescriptionLine | None = None  # an added line
    reason: str = ""  # why it is not ticked by default
    tickable: bool = True
    route: str = ""  # the prescriber's choice of route

    @property
    def key(self) -> str:
        return self.treatment.id if self.treatment is not None else f"new-{id(self.line)}"

    @property
    def dci(self) -> str:
        return self.treatment.dci if self.treatment is not None else (self.line.dci if self.line else "")


def count_text(ticked: int, total: int) -> str:
    if ticked == 0:
        return f"Aucune ligne cochée sur {total}"
    return f"{display.plural(ticked, 'ligne cochée', 'lignes cochées')} sur {total}"


def treatment_text(treatment: Treatment) -> str:
    """A treatment as the list shows it: what it is and how it is taken (the dates are on the patient screen)."""
    text = " ".join(part for part in (treatment.dci, treatment.strength, treatment.form) if part)
    if treatment.posology:
        text += f" — {treatment.posology}"
    marks = ["ALD"] if treatment.ald_related else []
    if treatment.non_substitution is not None:
        marks.append(f"non substituable {treatment.non_substitution.value}")
    return text + (f" [{', '.join(marks)}]" if marks else "")


def row_label(row: Row, route_needed: bool) -> Text:
    label = Text(f"{TICKED if row.ticked else UNTICKED} ", style="bold green" if row.ticked else "bold")
    if row.treatment is not None:
        label.append(treatment_text(row.treatment))
    elif row.line is not None:
        label.append("+ ", style="bold")
        label.append(printed.line_title(row.line) or row.line.dci)
        if row.line.posology:
            label.append(f" — {row.line.posology}")
        if row.line.ald_related:
            label.append(" [ALD]")
        label.append("  (ligne ajoutée, Suppr : retirer)", style="italic")
    if row.reason:
        label.append(f"  — non coché : {row.reason}", style="bold red" if not row.tickable else "bold yellow")
    if row.route:
        label.append(f"  · voie {row.route}", style="bold")
    elif route_needed and row.ticked:
        label.append("  · voie à choisir (v)", style="bold red")
    return label


@dataclass
class PrescriptionPrinted(Message):
    """Posted by the printing thread."""

    message_fr: str
    error: bool = False
    issued: bool = True  # the ordonnance was issued (journaled), whether or not the printer took it


class LineList(OptionList):
    """Espace ticks the highlighted line; Entrée goes on to printing rather than selecting."""

    BINDINGS = [
        Binding("enter", "screen.print", "Imprimer", show=False),
        Binding("space", "screen.tick", "Cocher", show=False),
    ]


# --- dialogs --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """One acknowledgement: the warning, what must be typed, and how the prompt says it."""

    warning: Alert
    expected: str  # folded
    prompt: str


def acknowledgement_steps(plan: PrescriptionPlan) -> list[Step]:
    """One step per danger (typed token), then one for all the remarks together."""
    patient = plan.prescription.patient
    steps: list[Step] = []
    for warning in plan.dangers:
        if warning.line is not None:
            dci = plan.prescription.lines[warning.line].dci
            token = drug_text.fold(dci).replace(" ", "")[:3] or "oui"
            steps.append(Step(warning, token, f"Tapez les 3 premières lettres du médicament concerné ({dci})"))
        elif warning.code == Danger.IDENTITY and patient.birth_date is not None:
            steps.append(Step(warning, str(patient.birth_date.year),
                              "Vérifiez avec le patient, puis tapez son année de naissance"))
        else:
            token = drug_text.fold(patient.birth_name).replace(" ", "")[:3] or "oui"
            steps.append(Step(warning, token, "Tapez les 3 premières lettres du nom de naissance du patient"))
    if plan.remarks:
        steps.append(Step(plan.remarks[0], "o", "Remarques lues : tapez o"))
    return steps


class AcknowledgeScreen(ModalScreen[frozenset[str] | None]):
    """Each danger acknowledged on its own, by typing what it asks; then Entrée prints."""

    DEFAULT_CSS = """
    AcknowledgeScreen { align: center middle; }
    AcknowledgeScreen > Vertical { width: 84; max-width: 100%; height: auto; max-height: 95%;
        border: thick $error; background: $surface; padding: 0 1; }
    AcknowledgeScreen .danger { color: white; background: #b00020; text-style: bold; padding: 0 1; }
    AcknowledgeScreen .remark { color: black; background: #f0c000; padding: 0 1; }
    AcknowledgeScreen Input { border: tall $error; }
    """

    BINDINGS = [Binding("escape", "cancel", "Revenir"), Binding("enter", "print", "Imprimer", show=False)]

    def __init__(self, summary_text: str, plan: PrescriptionPlan) -> None:
        super().__init__()
        self.summary_text = summary_text
        self.plan = plan
        self.steps = acknowledgement_steps(plan)
        self.position = 0
        self.acknowledged: set[str] = set()

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.summary_text, markup=False)
            yield Static("", id="ack-progress", markup=False)
            yield Static("", id="ack-warning", markup=False)
            yield Static("", id="ack-prompt", markup=False)
            yield Input(id="ack-input")

    def on_mount(self) -> None:
        if self.app.is_headless:
            self.query_one(Input).cursor_blink = False
        self._show()

    def _show(self) -> None:
        warning_box = self.query_one("#ack-warning", Static)
        prompt = self.query_one("#ack-prompt", Static)
        progress = self.query_one("#ack-progress", Static)
        field = self.query_one(Input)
        if self.position >= len(self.steps):
            progress.update(f"Tout est confirmé ({display.plural(len(self.steps), 'étape')}).")
            warning_box.update("")
            warning_box.set_classes("")
            prompt.update("Entrée : imprimer — Échap : revenir")
            field.display = False
            self.focus()
            return
        step = self.steps[self.position]
        total = len(self.steps)
        progress.update(f"Confirmation {self.position + 1} sur {total}")
        if step.warning.is_danger:
            warning_box.update(f"⚠ {step.warning.text}")
            warning_box.set_classes("danger")
        else:
            warning_box.update("\n".join(f"ℹ {w.text}" for w in self.plan.remarks))
            warning_box.set_classes("remark")
        prompt.update(f"{step.prompt}, puis Entrée — Échap : revenir")
        field.value = ""
        field.display = True
        field.focus()

    @on(Input.Submitted, "#ack-input")
    def typed(self, event: Input.Submitted) -> None:
        event.stop()
        step = self.steps[self.position]
        if drug_text.fold(event.value).replace(" ", "") != step.expected:
            self.notify("Ce n'est pas ce qui est demandé : relisez l'alerte.", severity="error", timeout=5)
            event.input.value = ""
            return
        self.acknowledged.add(step.warning.code)
        if not step.warning.is_danger:
            self.acknowledged.add(rules.REMARK)
        self.position += 1
        self._show()

    def action_print(self) -> None:
        if self.position >= len(self.steps):
            self.dismiss(frozenset(self.acknowledged))

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmDiscard(ModalScreen[bool]):
    """Échap on a draft: leave it only when the doctor says so."""

    DEFAULT_CSS = """
    ConfirmDiscard { align: center middle; }
    ConfirmDiscard > Vertical { width: 60; max-width: 100%; height: auto; border: thick $warning;
        background: $surface; padding: 1 2; }
    """
    BINDINGS = [Binding("o", "answer(True)", "Abandonner"), Binding("n,escape", "answer(False)", "Continuer")]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Abandonner cette ordonnance en cours ?\nRien n'a été imprimé.\n\n"
                         "o : oui, l'abandonner — n ou Échap : non, continuer", markup=False)

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class ChooseScreen(ModalScreen[str | None]):
    """Pick one value in a short list (a route, another practitioner)."""

    DEFAULT_CSS = """
    ChooseScreen { align: center middle; }
    ChooseScreen > Vertical { width: 70; max-width: 100%; height: auto; max-height: 90%;
        border: thick $accent; background: $surface; padding: 0 1; }
    ChooseScreen OptionList { height: auto; max-height: 16; }
    """
    BINDINGS = [Binding("escape", "cancel", "Revenir")]

    def __init__(self, title: str, choices: list[tuple[str, str]]) -> None:
        super().__init__()
        self.title_text = title
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.title_text, markup=False)
            yield OptionList(*[Option(Text(label), id=value) for label, value in self.choices])
            yield Static("↑ ↓ puis Entrée : choisir — Échap : revenir", markup=False)

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class TickBox(Static, can_focus=True):
    """A yes/no field shown with the same text marks as the lines ("[✓]" / "[ ]"), not by colour alone."""

    BINDINGS = [Binding("space", "flip", "Cocher", show=False), Binding("enter", "screen.add", "Ajouter", show=False)]

    def __init__(self, label: str, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id, markup=False)
        self.label = label
        self.value = False

    def on_mount(self) -> None:
        self._show()

    def _show(self) -> None:
        self.update(f"{TICKED if self.value else UNTICKED} {self.label}")

    def action_flip(self) -> None:
        self.value = not self.value
        self._show()


class DciSuggester(Suggester):
    """Completes a DCI from the snapshot's drug reference (→ accepts the suggestion)."""

    def __init__(self, drugs: DrugReference) -> None:
        super().__init__(use_cache=True, case_sensitive=True)
        self.drugs = drugs

    async def get_suggestion(self, value: str) -> str | None:
        found = self.drugs.complete_dci(value, limit=1)
        if not found:
            return None
        # Keep what was typed (its case and accents) and add the rest of the name.
        return value + found[0][len(value):] if len(found[0]) > len(value) else None


class AddLineScreen(ModalScreen[PrescriptionLine | None]):
    """A new line, one field each: DCI (completed from the drug reference), dosage, form, route, posology,
    duration, ALD. Entrée goes to the next field; on the last one (ALD, ticked with Espace) it adds the line."""

    DEFAULT_CSS = """
    AddLineScreen { align: center middle; }
    AddLineScreen > Vertical { width: 86; max-width: 100%; height: auto; max-height: 100%;
        border: thick $accent; background: $surface; padding: 0 1; }
    AddLineScreen Grid { grid-size: 2; grid-columns: 13 1fr; grid-rows: 1; grid-gutter: 0 1; height: auto; }
    AddLineScreen Input, AddLineScreen Input:focus { border: none; height: 1; padding: 0 1; }
    AddLineScreen Input:focus { background: $accent 30%; }
    AddLineScreen TickBox { height: 1; }
    AddLineScreen TickBox:focus { background: $accent 30%; }
    AddLineScreen .label { text-style: bold; }
    AddLineScreen #add-error { color: $error; text-style: bold; }
    """
    BINDINGS = [Binding("escape", "cancel", "Revenir"), Binding("ctrl+s", "add", "Ajouter", show=False)]
    FIELDS = (("dci", "DCI"), ("strength", "Dosage"), ("form", "Forme"), ("route", "Voie"),
              ("posology", "Posologie"), ("duration", "Durée"))
    PLACEHOLDERS = {
        "dci": "substance (→ : compléter)", "strength": "ex. 500 mg", "form": "ex. comprimé, gélule, crème",
        "route": "vide : d'après le médicament ou la forme", "posology": "ex. 1 comprimé 3 fois par jour",
        "duration": "ex. 5 j, 2 semaines, 1 mois",
    }

    def __init__(self, drugs: DrugReference | None) -> None:
        super().__init__()
        self.drugs = drugs

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Ajouter une ligne"
            with Grid():
                for name, label in self.FIELDS:
                    yield Static(label, classes="label")
                    suggester = DciSuggester(self.drugs) if name == "dci" and self.drugs is not None else None
                    yield Input(placeholder=self.PLACEHOLDERS[name], id=f"add-{name}", suggester=suggester)
                yield Static("ALD", classes="label")
                yield TickBox("en rapport avec l'affection de longue durée (Espace)", id="add-ald")
            yield Static("", id="add-hint", markup=False)
            yield Static("", id="add-error", markup=False)
            yield Static("Entrée : champ suivant ; sur ALD, Espace coche et Entrée ajoute la ligne — Échap : annuler",
                         markup=False)

    def on_mount(self) -> None:
        for field in self.query(Input):
            if self.app.is_headless:
                field.cursor_blink = False
        self.query_one("#add-dci", Input).focus()

    def value(self, name: str) -> str:
        return self.query_one(f"#add-{name}", Input).value.strip()

    @on(Input.Changed, "#add-dci")
    def dci_changed(self) -> None:
        hint = self.query_one("#add-hint", Static)
        if self.drugs is None:
            hint.update("Pas de référence des médicaments dans ces données : DCI non vérifiée.")
            return
        names = self.drugs.complete_dci(self.value("dci"), limit=5)
        hint.update(("Dans la référence : " + ", ".join(names)) if names else "")

    @on(Input.Submitted)
    def next_field(self, event: Input.Submitted) -> None:
        event.stop()
        names = [name for name, _ in self.FIELDS]
        current = (event.input.id or "").removeprefix("add-")
        if current != "duration":
            self.query_one(f"#add-{names[names.index(current) + 1]}", Input).focus()
            return
        self.query_one("#add-ald", TickBox).focus()

    def submit(self) -> None:
        error = self.query_one("#add-error", Static)
        if not self.value("dci"):
            error.update("La DCI est obligatoire.")
            self.query_one("#add-dci", Input).focus()
            return
        try:
            days = rules.parse_duration(self.value("duration") or "1 mois")
        except ValueError as problem:
            error.update(str(problem))
            self.query_one("#add-duration", Input).focus()
            return
        route = self.value("route")
        self.dismiss(PrescriptionLine(
            dci=self.value("dci"), strength=self.value("strength"), form=self.value("form"),
            route=drug_text.route_name(route) or route, posology=self.value("posology"), duration_days=days,
            ald_related=self.query_one("#add-ald", TickBox).value,
        ))

    def action_add(self) -> None:
        self.submit()

    def action_cancel(self) -> None:
        self.dismiss(None)


# --- the screen -----------------------------------------------------------------------------------


class PrescriptionScreen(SessionScreen):
    SAFE_FOR_SWITCH = False  # a half-made ordonnance must not change under the doctor's eyes

    BINDINGS = [
        Binding("escape", "back", "Retour"),
        Binding("space", "tick", "Cocher"),
        Binding("a", "add_line", "Ajouter"),
        Binding("delete", "remove_line", "Retirer"),
        Binding("v", "route", "Voie"),
        Binding("m", "prescriber", "Signataire"),
        Binding("p", "print", "Imprimer"),
        Binding("pagedown", "preview(1)", "Aperçu ↓", show=False),
        Binding("pageup", "preview(-1)", "Aperçu ↑", show=False),
    ]

    def __init__(self, view: PatientView, *, renew_all: bool = True,
                 id_factory: Callable[[], str] = new_prescription_id) -> None:
        super().__init__()
        self.view = view
        self.renew_all = renew_all
        self.prescription_id = id_factory()
        self.rows: list[Row] = []
        self.plan: PrescriptionPlan | None = None
        self.refusal = ""
        self.signing: SigningChoice | None = None
        self.route_needed: set[str] = set()
        self.changed = False
        self._printing = False
        self._outcome: PrescriptionPrinted | None = None  # arrived while another screen was on top

    # -- layout

    def compose(self) -> ComposeResult:
        patient = self.view.summary.patient
        yield Banner()
        with Vertical(id="rx-top"):
            yield Static(f"Ordonnance pour {display.identity_line(patient)}", id="rx-patient", markup=False)
            yield Static("", id="rx-signer", markup=False)
            # The dangers first: they must be on screen whatever the size of the terminal.
            yield Static("", id="rx-warnings", markup=False)
            yield LineList(id="rx-lines")
            yield Static("", id="rx-count", markup=False)
        with VerticalScroll(id="rx-preview-box"):
            yield Static("", id="rx-preview", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        try:
            self.signing = self.session.signing(self.session.signer())
        except NotAllowed as error:
            self._leave_with(error.message_fr)
            return
        except ContinuityError as error:
            self._leave_with(error.message_fr)
            return
        today = self.session.today()
        drugs = self.session.drug_reference()
        for treatment in self.view.summary.treatments:
            reason = rules.not_ticked_reason(treatment, today, has_reference=drugs is not None)
            untickable = treatment.narcotic or (treatment.drug is not None and (
                treatment.drug.secure_paper or treatment.drug.hospital_only))
            self.rows.append(Row(ticked=self.renew_all and not reason, treatment=treatment, reason=reason,
                                 tickable=not untickable))
        if sum(row.ticked for row in self.rows) > rules.MAX_LINES:
            # More continuous treatments than one ordonnance may carry (a broken or hostile export):
            # nothing is ticked, the prescriber picks what to renew.
            for row in self.rows:
                row.ticked = False
            self.notify(f"{len(self.rows)} traitements : aucun n'est coché d'office, cochez ceux à renouveler "
                        f"({rules.MAX_LINES} lignes au plus par ordonnance).", severity="warning", timeout=15)
        box = self.query_one("#rx-lines", LineList)
        box.border_title = "Lignes (Espace : cocher — a : ajouter — v : voie)"
        self.query_one("#rx-preview-box").border_title = "Aperçu — ce qui sera imprimé"
        self._show_signer()
        self.rebuild()
        # Even without a treatment to renew the form does not open by itself: the doctor's next key,
        # typed from habit (the `a` the screen names), would land in its drug field.
        box.focus()

    def _leave_with(self, message: str) -> None:
        from continuity.tui.screens.dialogs import MessageScreen

        def leave() -> None:
            self.app.pop_screen()
            self.app.push_screen(MessageScreen("Ordonnance impossible", message))

        self.call_after_refresh(leave)

    def _show_signer(self) -> None:
        if self.signing is None:
            return
        practitioner = self.signing.practitioner
        chosen = " — choisi par vous (journalisé)" if self.signing.chosen_by else ""
        self.query_one("#rx-signer", Static).update(
            f"Signataire : {practitioner.display_name} — RPPS {practitioner.rpps}{chosen}  (m : autre praticien)"
        )

    # -- the plan

    def _renewals_and_lines(self) -> tuple[list[rules.Renewal], list[PrescriptionLine]]:
        renewals = [rules.Renewal(row.treatment.id, route=row.route)
                    for row in self.rows if row.ticked and row.treatment is not None]
        lines = [replace(row.line, route=row.route) if row.route else row.line
                 for row in self.rows if row.ticked and row.line is not None]
        return renewals, lines

    def rebuild(self) -> None:
        """Rebuild the plan from the ticks, the added lines and the routes; show list, preview and warnings."""
        self.plan = None
        self.refusal = ""
        renewals, lines = self._renewals_and_lines()
        if self.signing is None:
            return
        if not renewals and not lines:
            self.refusal = (
                "Cochez au moins une ligne (Espace) ou ajoutez-en une (touche a)."
                if self.rows
                else "Aucun traitement en cours à renouveler : touche a pour ajouter une ligne."
            )
        else:
            try:
                self.plan = self.session.plan_prescription(
                    self.view, self.signing, renew=renewals, new_lines=lines, prescription_id=self.prescription_id
                )
            except ContinuityError as error:
                self.refusal = error.message_fr
        self._find_routes_needed(renewals, lines)
        self._show_rows()
        warnings = self.query_one("#rx-warnings", Static)
        preview = self.query_one("#rx-preview", Static)
        ticked = sum(1 for row in self.rows if row.ticked)
        self.query_one("#rx-count", Static).update(count_text(ticked, len(self.rows)))
        if self.plan is None:
            warnings.update(self.refusal)
            warnings.set_classes("-refused")
            warnings.display = True
            preview.update("")
            return
        shown = [f"⚠ {w.text}" for w in self.plan.dangers]
        shown += [f"ℹ {w.text}" for w in self.plan.remarks]
        shown += [f"· {note}" for note in self.plan.notes]
        warnings.update("\n".join(shown))
        warnings.set_classes("-warnings" if self.plan.dangers else ("-notes" if shown else ""))
        warnings.display = bool(shown)
        # The rules of the preview must not wrap: as wide as the box (border, padding, scrollbar).
        width = max(40, min(78, self.app.size.width - 10))
        text = printed.preview_text(self.plan.prescription, snapshot_created_at=self._data_time(), width=width)
        preview.update(text)
        # The prescriber block is the same every time: open the preview on the patient and the lines.
        patient_row = next((i for i, line in enumerate(text.splitlines()) if line.startswith("Patient :")), 0)
        box = self.query_one("#rx-preview-box", VerticalScroll)
        self.call_after_refresh(box.scroll_to, y=max(0, patient_row - 1), animate=False)

    def _find_routes_needed(self, renewals: list[rules.Renewal], lines: list[PrescriptionLine]) -> None:
        """The rows whose route the prescriber must choose (the reference or the form leaves it open)."""
        drugs = self.session.drug_reference()
        self.route_needed = set()
        for row in self.rows:
            if row.route:
                continue
            if row.treatment is not None:
                treatment = row.treatment
                decision = rules.decide_route(treatment.drug, treatment.form, treatment.route)
            elif row.line is not None:
                line = rules.resolve_line(row.line, drugs)
                decision = rules.decide_route(line.drug, line.form, "", line.route)
            else:
                continue
            if not decision.route:
                self.route_needed.add(row.key)

    def _show_rows(self) -> None:
        box = self.query_one("#rx-lines", LineList)
        highlighted = box.highlighted
        box.clear_options()
        box.add_options([Option(row_label(row, row.key in self.route_needed), id=row.key) for row in self.rows])
        if self.rows:
            box.highlighted = min(highlighted or 0, len(self.rows) - 1)

    def _data_time(self) -> dt.datetime:
        return self.session.banner().created_at

    def _current(self) -> Row | None:
        index = self.query_one("#rx-lines", LineList).highlighted
        return self.rows[index] if index is not None and 0 <= index < len(self.rows) else None

    # -- actions

    def action_tick(self) -> None:
        row = self._current()
        if row is None:
            return
        if not row.tickable:
            self.notify(f"« {row.dci} » : {row.reason}. Il ne peut pas figurer sur cette ordonnance.",
                        severity="error", timeout=8)
            return
        row.ticked = not row.ticked
        self.changed = True
        self.rebuild()

    def action_add_line(self) -> None:
        def added(line: PrescriptionLine | None) -> None:
            if line is None:
                return
            self.rows.append(Row(ticked=True, line=line))
            self.changed = True
            self.rebuild()
            box = self.query_one("#rx-lines", LineList)
            box.highlighted = len(self.rows) - 1
            box.focus()
            self.notify(f"Ligne ajoutée : {line.dci}", timeout=4)

        self.app.push_screen(AddLineScreen(self.session.drug_reference()), added)

    def action_remove_line(self) -> None:
        row = self._current()
        if row is None or row.line is None:
            self.notify("Seules les lignes ajoutées peuvent être retirées (les autres : Espace pour décocher).",
                        timeout=6)
            return
        self.rows.remove(row)
        self.changed = True
        self.rebuild()

    def action_route(self) -> None:
        row = self._current()
        if row is None:
            return
        drug = row.treatment.drug if row.treatment is not None else (
            rules.resolve_line(row.line, self.session.drug_reference()).drug if row.line is not None else None)
        routes = drug.routes if drug is not None and drug.identified and drug.routes else COMMON_ROUTES

        def chosen(route: str | None) -> None:
            if route:
                row.route = route
                self.changed = True
                self.rebuild()

        self.app.push_screen(ChooseScreen(f"Voie d'administration de « {row.dci} »",
                                          [(f"voie {route}", route) for route in routes]), chosen)

    def action_prescriber(self) -> None:
        if self.signing is None:
            return
        others = [p for p in self.view.practitioners.values() if p.rpps]
        choices = [(f"{p.display_name} — RPPS {p.rpps}", p.id) for p in sorted(others, key=lambda p: p.family_name)]

        def chosen(practitioner_id: str | None) -> None:
            if not practitioner_id:
                return
            try:
                self.signing = self.session.signing(self.session.signer(), practitioner_id)
            except ContinuityError as error:
                self.notify(error.message_fr, severity="error", timeout=8)
                return
            self.changed = True
            self._show_signer()
            self.rebuild()

        self.app.push_screen(ChooseScreen("Praticien du cabinet qui signe cette ordonnance (choix journalisé)",
                                          choices), chosen)

    def action_preview(self, pages: int) -> None:
        box = self.query_one("#rx-preview-box", VerticalScroll)
        box.scroll_relative(y=pages * max(1, box.size.height - 1), animate=False)

    def action_back(self) -> None:
        if not self.changed:
            self.app.pop_screen()
            return

        def answered(discard: bool | None) -> None:
            if discard:
                self.app.pop_screen()

        self.app.push_screen(ConfirmDiscard(), answered)

    # -- printing

    def action_print(self) -> None:
        if self._printing:
            return
        if self.plan is None:
            self.notify(self.refusal or "Rien à imprimer.", severity="error", timeout=8)
            return
        if not self.plan.warnings:
            self._confirmed(frozenset())  # the preview on screen is what prints: Entrée is the confirmation
            return
        prescription = self.plan.prescription
        count = printed.line_count(len(prescription.lines))
        summary = (
            f"Imprimer l'ordonnance de {display.identity_line(prescription.patient)}\n"
            f"Signataire : {prescription.prescriber.display_name} — {count}"
            + (" — ordonnance bizone (ALD)" if prescription.is_bizone else "")
        )
        self.app.push_screen(AcknowledgeScreen(summary, self.plan), self._confirmed)

    def _confirmed(self, acknowledged: frozenset[str] | None) -> None:
        if acknowledged is None or self.plan is None or self.signing is None:
            return
        self._printing = True
        self.notify("Préparation de l'ordonnance…")
        self._print(self.plan, self.signing, acknowledged)

    @work(thread=True, exclusive=True, group="prescription")
    def _print(self, plan: PrescriptionPlan, signing: SigningChoice, acknowledged: frozenset[str]) -> None:
        # A thread: rendering takes a moment. The session journals before it returns the PDF.

        session = self.capp.session
        if session is None:
            return
        try:
            issued = session.issue_prescription(plan, signing, acknowledged=acknowledged)
        except ContinuityError as error:
            self.post_message(PrescriptionPrinted(f"Ordonnance non imprimée : {error.message_fr}", error=True,
                                                  issued=False))  # fmt: skip
            return
        try:
            where = self.capp.send_to_printer(issued.pdf, f"ordonnance-{issued.prescription.id[:8]}",
                                              title="Ordonnance")  # fmt: skip
        except ContinuityError as error:  # PrintFailed says where the PDF was saved instead
            self.post_message(PrescriptionPrinted(error.message_fr, error=True))
            return
        except OSError as error:
            self.post_message(PrescriptionPrinted(f"Impression impossible : {error}", error=True))
            return
        self.post_message(PrescriptionPrinted(where))

    @on(PrescriptionPrinted)
    def printed_message(self, message: PrescriptionPrinted) -> None:
        self._printing = False
        self.capp.printed.append(message.message_fr)
        if self.app.screen is not self:
            # Something came on top while the worker finished (the idle lock's unlock screen): never
            # pop that one. The outcome is shown when this screen is on top again, after the unlock.
            self._outcome = message
            return
        self._show_outcome(message)

    def on_screen_resume(self) -> None:
        if self._outcome is not None:
            outcome, self._outcome = self._outcome, None
            self.call_after_refresh(self._show_outcome, outcome)

    def _show_outcome(self, message: PrescriptionPrinted) -> None:
        from continuity.tui.screens.dialogs import MessageScreen

        if not message.issued:  # nothing was issued: the draft stays, as it was
            self.app.push_screen(MessageScreen("Ordonnance non imprimée", message.message_fr))
            return
        # Issued and journaled, on paper or saved in the print folder: this draft is done. Staying on it
        # would invite a second ordonnance, and Échap would ask to "abandon" what already exists.
        self.app.pop_screen()
        if message.error:
            self.app.push_screen(MessageScreen("Impression impossible", message.message_fr))
        else:
            self.notify(message.message_fr, timeout=10)

