"""Agenda: the day's appointments per practitioner with phone numbers; Enter opens the patient."""

from __future__ import annotations

import datetime as dt

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Static

from continuity import display
from continuity.model import Practitioner
from continuity.snapshotdb import AgendaEntry
from continuity.tui.screens.base import SessionScreen
from continuity.tui.widgets.banner import Banner

WEEKDAYS_FR = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")


def day_title(day: dt.date, today: dt.date) -> str:
    relative = {0: " (aujourd'hui)", 1: " (demain)"}.get((day - today).days, "")
    return f"{WEEKDAYS_FR[day.weekday()]} {display.fr_date(day)}{relative}"


def by_practitioner(entries: list[AgendaEntry]) -> list[tuple[str, list[AgendaEntry]]]:
    groups: dict[str, list[AgendaEntry]] = {}
    for entry in entries:
        groups.setdefault(entry.appointment.practitioner_id, []).append(entry)
    return list(groups.items())


def day_list_text(day: dt.date, today: dt.date, entries: list[AgendaEntry],
                  practitioners: dict[str, Practitioner], header: str) -> str:
    """The printable day list: one block per practitioner, time, patient, date of birth, phone."""
    lines = [header, f"Rendez-vous du {day_title(day, today)}", ""]
    if not entries:
        lines.append("Aucun rendez-vous.")
    for practitioner_id, group in by_practitioner(entries):
        found = practitioners.get(practitioner_id)
        lines.append(found.display_name if found else practitioner_id)
        for entry in group:
            phone = ", ".join(entry.patient.phones) or "pas de téléphone"
            lines.append(
                f"  {entry.appointment.start:%H:%M}  {display.patient_name(entry.patient)} "
                f"({display.born_label(entry.patient)})  tél. {phone}"
                + (f"  — {entry.appointment.description}" if entry.appointment.description else "")
            )
        lines.append("")
    return "\n".join(lines)


class AgendaScreen(SessionScreen):
    BINDINGS = [
        Binding("escape", "back", "Retour"),
        Binding("left", "day(-1)", "Jour précédent"),
        Binding("right", "day(1)", "Jour suivant"),
        Binding("t", "today", "Aujourd'hui"),
        Binding("p", "print_day", "Imprimer la liste"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.day: dt.date | None = None
        self.entries: list[AgendaEntry] = []

    def compose(self) -> ComposeResult:
        yield Banner()
        yield Static(id="agenda-title", markup=False)
        yield DataTable(id="agenda-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#agenda-table", DataTable)
        # The phone number right after the name: the reception calls patients to move appointments.
        table.add_column("Heure", key="time")
        table.add_column("Patient", key="patient")
        table.add_column("Téléphone", key="phone")
        table.add_column("Né(e) le", key="born")
        table.add_column("Motif", key="reason")
        self.day = self.session.today()
        self._load()
        table.focus()

    def _load(self) -> None:
        assert self.day is not None
        session = self.session
        self.entries = session.agenda(self.day, self.day)
        practitioners = session.practitioners()
        title = self.query_one("#agenda-title", Static)
        count = len(self.entries)
        title.update(
            f"Rendez-vous du {day_title(self.day, session.today())} — {count} rendez-vous"
            " — Entrée : ouvrir le dossier ; ← → : changer de jour"
        )
        table = self.query_one("#agenda-table", DataTable)
        table.clear()
        for practitioner_id, group in by_practitioner(self.entries):
            found = practitioners.get(practitioner_id)
            name = found.display_name if found else practitioner_id
            phone = f"cabinet {found.phone}" if found and found.phone else ""
            table.add_row(Text(""), Text(name, style="bold reverse"), Text(phone, style="bold"), Text(""),
                          Text(""), key=f"prac:{practitioner_id}")
            for entry in group:
                table.add_row(
                    Text(f"{entry.appointment.start:%H:%M}"),
                    Text(display.patient_name(entry.patient), style="bold"),
                    Text(", ".join(entry.patient.phones) or "—"),
                    Text(display.fr_date(entry.patient.birth_date)),
                    Text(entry.appointment.description),
                    key=f"apt:{entry.appointment.id}",
                )
        if not self.entries:
            table.add_row(Text(""), Text("Aucun rendez-vous ce jour-là."), Text(""), Text(""), Text(""), key="empty")
        elif table.row_count > 1:
            table.move_cursor(row=1)

    def action_day(self, step: int) -> None:
        assert self.day is not None
        self.day += dt.timedelta(days=step)
        self._load()

    def action_today(self) -> None:
        self.day = self.session.today()
        self._load()

    def action_back(self) -> None:
        self.app.pop_screen()

    @on(DataTable.RowSelected, "#agenda-table")
    def open_patient(self, event: DataTable.RowSelected) -> None:
        key = str(event.row_key.value)
        if not key.startswith("apt:"):
            return
        appointment_id = key.removeprefix("apt:")
        for entry in self.entries:
            if entry.appointment.id == appointment_id:
                self.capp.open_patient(entry.patient.id)
                return

    def action_print_day(self) -> None:
        assert self.day is not None
        session = self.session
        banner = session.banner()
        text = day_list_text(self.day, session.today(), self.entries, session.practitioners(),
                             f"{banner.practice_name} — {banner.headline}")
        self.capp.print_day_list(self.day, text)

    def snapshot_switched(self) -> None:
        super().snapshot_switched()
        self._load()
