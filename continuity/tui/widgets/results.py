"""The search results table: one row per patient, homonyms flagged, date of birth beside the name."""

from __future__ import annotations

import datetime as dt

from rich.text import Text
from textual.widgets import DataTable

from continuity import display
from continuity.snapshotdb import SearchResult

HOMONYM_FLAG = "⚠ HOMONYME"
HOMONYM_WARNING = "Homonyme : vérifier la date de naissance"

COLUMNS = (
    ("Nom de naissance", "birth_name"),
    ("Nom d'usage", "used_name"),
    ("Prénoms", "given"),
    ("Date de naissance", "born"),
    ("Sexe", "sex"),
    ("Identité", "status"),
    ("Alerte", "flag"),
)


def result_cells(result: SearchResult, today: dt.date) -> tuple[Text, ...]:
    patient = result.patient
    born = f"{display.fr_date(patient.birth_date)} ({display.age_label(patient, today)})"
    status = display.IDENTITY_STATUS_FR[patient.identity_status]
    flags = []
    if result.homonyms:
        flags.append(HOMONYM_FLAG)
    if patient.deceased:
        flags.append("DÉCÉDÉ")
    flag = Text(" ".join(flags), style="bold black on yellow") if flags else Text("")
    # Plain Text everywhere: a str cell would be parsed as console markup, and names come from the data.
    return (
        Text(patient.birth_name.upper(), style="bold"),
        Text(patient.used_name.upper() if patient.used_name != patient.birth_name else ""),
        Text(" ".join(patient.birth_given_names)),
        Text(born),
        Text(patient.sex.letter),
        Text(status),
        flag,
    )


class ResultsTable(DataTable[Text]):
    """Rows keyed by patient id; the query the rows answer is kept so stale rows are never opened."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's own keyword
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.query_text: str | None = None
        self.results: list[SearchResult] = []

    def on_mount(self) -> None:
        for label, key in COLUMNS:
            self.add_column(label, key=key)

    def show(self, query_text: str, results: list[SearchResult], today: dt.date) -> None:
        self.clear()
        self.query_text = query_text
        self.results = list(results)
        for result in results:
            self.add_row(*result_cells(result, today), key=result.patient.id)
        if results:
            self.move_cursor(row=0)

    def highlighted(self) -> SearchResult | None:
        if not self.results or not 0 <= self.cursor_row < len(self.results):
            return None
        return self.results[self.cursor_row]
