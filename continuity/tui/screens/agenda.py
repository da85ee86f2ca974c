"""Agenda: the day's appointments per practitioner with phone numbers; Enter opens the patient.

The columns are sized to fit 100 columns (and still show the birth date at 80): time, patient,
birth date, phone in the French national format ("06 39 98 63 93"), then the reason, cut with an
ellipsis rather than pushed off the screen.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Static

from continuity import display
from continuity.model import Practitioner
from continuity.tui.screens.base import SessionScreen
from continuity.tui.widgets.banner import Banner

if TYPE_CHECKING:
    from continuity.snapshotdb import AgendaEntry  # a type only: the database code loads after the app starts

WEEKDAYS_FR = display.WEEKDAYS_FR
# Column widths (characters) of the time, birth date and phone; the patient and the reason share the rest.
TIME_WIDTH, BIRTH_WIDTH, PHONE_WIDTH = 5, 10, 14
PATIENT_SHARE = 0.55  # of what is left for patient and reason


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
            phone = ", ".join(display.fr_phone(p) for p in entry.patient.phones) or "pas de téléphone"
            lines.append(
                f"  {display.local(entry.appointment.start):%H:%M}  {display.patient_name(entry.patient)} "
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
        # The birth date right after the name (the identity check), then the phone: the reception
        # calls patients to move appointments.
        patient_width, reason_width = self._widths()
        table.add_column("Heure", key="time", width=TIME_WIDTH)
        table.add_column("Patient", key="patient", width=patient_width)
        table.add_column("Naissance", key="born", width=BIRTH_WIDTH)
        table.add_column("Téléphone", key="phone", width=PHONE_WIDTH)
        table.add_column("Motif", key="reason", width=reason_width)
        self.day = self.session.today()
        self._load()
        table.focus()

    def _widths(self) -> tuple[int, int]:
        """Patient and reason widths for this terminal (each column has a 2-character margin)."""
        left = max(20, self.app.size.width - 2 - 5 * 2 - TIME_WIDTH - BIRTH_WIDTH - PHONE_WIDTH - 2)
        patient = max(14, round(left * PATIENT_SHARE))
        return patient, max(6, left - patient)

    def _load(self) -> None:
        assert self.day is not None
        session = self.session
        self.entries = session.agenda(self.day, self.day)
        practitioners = session.practitioners()
        title = self.query_one("#agenda-title", Static)
        count = len(self.entries)
        title.update(
            f"Rendez-vous du {day_title(self.day, session.today())} — {count} rendez-vous"
            " — Entrée : ouvrir ; ← → : autre jour"
        )
        table = self.query_one("#agenda-table", DataTable)
        table.clear()
        for practitioner_id, group in by_practitioner(self.entries):
            found = practitioners.get(practitioner_id)
            name = found.display_name if found else practitioner_id
            phone = display.fr_phone(found.phone) if found and found.phone else ""
            # The practitioner's own line: the practice's phone in the phone column.
            table.add_row(Text(""), cell(name, style="bold reverse"), Text(""), cell(phone, style="bold"),
                          Text(""), key=f"prac:{practitioner_id}")
            for entry in group:
                phones = [display.fr_phone(p) for p in entry.patient.phones]
                table.add_row(
                    Text(f"{display.local(entry.appointment.start):%H:%M}"),
                    cell(display.patient_name(entry.patient), style="bold"),
                    Text(display.fr_date(entry.patient.birth_date, unknown="inconnue")),
                    cell(phones[0] if phones else "—"),
                    cell(entry.appointment.description or "—"),
                    key=f"apt:{entry.appointment.id}",
                )
        if not self.entries:
            table.add_row(Text(""), cell("Aucun rendez-vous ce jour-là."), Text(""), Text(""), Text(""), key="empty")
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


def cell(text: str, *, style: str = "") -> Text:
    """A cell cut with an ellipsis at the column's width (data, never markup)."""
    return Text(text, style=style, no_wrap=True, overflow="ellipsis")
