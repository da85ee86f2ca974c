"""The search results table: one row per patient, homonyms flagged first, date of birth beside the name.

Two layouts: from 100 columns every trait has its own column with a full header; below that (80×24 is
the smallest supported terminal) the headers are shortened and the identity status moves to the line
under the table, so the homonym flag and the date of birth never fall off the right edge.
"""

from __future__ import annotations

import datetime as dt

from rich.text import Text
from textual.widgets import DataTable

from continuity import display
from continuity.snapshotdb import SearchResult

HOMONYM_FLAG = "⚠ HOMONYME"
HOMONYM_WARNING = "Homonyme : vérifier la date de naissance"
WIDE_FROM = 100

WIDE_COLUMNS = (
    ("Alerte", "flag"),
    ("Nom de naissance", "birth_name"),
    ("Nom d'usage", "used_name"),
    ("Prénoms", "given"),
    ("Date de naissance", "born"),
    ("Sexe", "sex"),
    ("Identité", "status"),
)
NARROW_COLUMNS = (
    ("⚠", "flag"),
    ("Nom", "birth_name"),
    ("Usage", "used_name"),
    ("Prénoms", "given"),
    ("Né(e) le", "born"),
    ("S", "sex"),
)


def result_cells(result: SearchResult, today: dt.date, *, wide: bool = True) -> tuple[Text, ...]:
    """The cells of one row, as plain Text: a str cell would be parsed as markup, and names are data."""
    patient = result.patient
    born = f"{display.fr_date(patient.birth_date)} ({display.age_label(patient, today)})"
    flags = []
    if result.homonyms:
        flags.append(HOMONYM_FLAG if wide else "HOMONYME")
    if patient.deceased:
        flags.append("DÉCÉDÉ")
    flag = Text(" ".join(flags), style="bold black on yellow") if flags else Text("")
    cells: tuple[Text, ...] = (
        flag,
        Text(patient.birth_name.upper(), style="bold"),
        Text(patient.used_name.upper() if patient.used_name != patient.birth_name else ""),
        Text(" ".join(patient.birth_given_names)),
        Text(born),
        Text(patient.sex.letter),
    )
    if wide:
        cells += (Text(display.IDENTITY_STATUS_FR[patient.identity_status]),)
    return cells


class ResultsTable(DataTable[Text]):
    """Rows keyed by patient id; the query the rows answer is kept so stale rows are never opened."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's own keyword
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.query_text: str | None = None
        self.results: list[SearchResult] = []
        self.wide: bool | None = None

    def on_mount(self) -> None:
        self._set_layout()

    def _set_layout(self) -> None:
        wide = self.app.size.width >= WIDE_FROM
        if wide == self.wide:
            return
        self.wide = wide
        self.clear(columns=True)
        for label, key in WIDE_COLUMNS if wide else NARROW_COLUMNS:
            self.add_column(label, key=key)

    def show(self, query_text: str, results: list[SearchResult], today: dt.date) -> None:
        self._set_layout()
        self.clear()
        self.query_text = query_text
        self.results = list(results)
        for result in results:
            self.add_row(*result_cells(result, today, wide=bool(self.wide)), key=result.patient.id)
        if results:
            self.move_cursor(row=0)

    def highlighted(self) -> SearchResult | None:
        if not self.results or not 0 <= self.cursor_row < len(self.results):
            return None
        return self.results[self.cursor_row]
