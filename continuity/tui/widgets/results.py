"""The search results table: one row per patient, homonyms flagged first, date of birth beside the name.

It draws its lines itself (Textual's line API) from segments prepared once per result set: a
DataTable re-renders every visible cell through Rich on each update, about 35 ms for a screenful,
which ate most of the 50 ms keystroke budget. Focus stays in the search field; the screen moves the
cursor. Two layouts: from 100 columns every trait has its own column with a full header; below that
(80×24 is the smallest supported terminal) the headers are shortened and the identity status moves
to the line under the table, so the homonym flag and the date of birth never fall off the right edge.
Names as heard (the search's second tier) follow the others under a line "orthographe proche",
each marked ≈ in the first column, so a sound-alike is never mistaken for the name typed.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from continuity import display

if TYPE_CHECKING:
    from continuity.snapshotdb import SearchResult

HOMONYM_FLAG = "⚠ HOMONYME"
HOMONYM_WARNING = "Homonyme : vérifier la date de naissance"
SAME_BIRTH_FLAG = "⚠ JUMEAU ?"
SAME_BIRTH_WARNING = "Même nom et même date de naissance qu'un autre patient : vérifier le prénom"
CLOSE_FLAG = "≈ proche"
CLOSE_DIVIDER = "orthographe proche — vérifiez le nom et la date de naissance"
WIDE_FROM = 100
MAX_CELL = 32  # no real name is longer; anything longer is cut with an ellipsis

WIDE_COLUMNS = ("Alerte", "Nom de naissance", "Nom d'usage", "Prénoms", "Date de naissance", "Sexe", "Identité")
NARROW_COLUMNS = ("⚠", "Nom", "Usage", "Prénoms", "Naissance", "S")
# Columns (index, narrowest width) shortened, in this order, when the row is wider than the screen.
SHRINK_ORDER = ((3, 12), (2, 6), (1, 12))
FLAG_STYLE = Style.parse("bold black on yellow")
CLOSE_STYLE = Style(italic=True)
NAME_STYLE = Style(bold=True)


def same_birth_keys(results: list[SearchResult]) -> set[tuple[str, dt.date]]:
    """(birth name, birth date) shared by several listed patients: twins, told apart by given name only."""
    # Imported when results come (search.py loaded with the database, not to show the unlock screen).
    from continuity import search

    keys: Counter[tuple[str, dt.date]] = Counter(
        (search.normalize(r.patient.birth_name), r.patient.birth_date) for r in results if r.patient.birth_date
    )
    return {key for key, count in keys.items() if count > 1}


def shares_birth(result: SearchResult, shared: set[tuple[str, dt.date]]) -> bool:
    from continuity import search

    patient = result.patient
    return patient.birth_date is not None and (search.normalize(patient.birth_name), patient.birth_date) in shared


def result_cells(
    result: SearchResult, today: dt.date, *, wide: bool = True, same_birth: bool = False
) -> tuple[Text, ...]:
    """The cells of one row, as plain Text (names are data: never parsed as markup)."""
    patient = result.patient
    born = f"{display.fr_date(patient.birth_date)} ({display.age_label(patient, today)})"
    flags = []
    if result.close:
        flags.append(CLOSE_FLAG if wide else "≈")
    if result.homonyms:
        flags.append(HOMONYM_FLAG if wide else "HOMONYME")
    elif same_birth:
        flags.append(SAME_BIRTH_FLAG if wide else "JUMEAU ?")
    if patient.deceased:
        flags.append("DÉCÉDÉ")
    if patient.flags:
        flags.append("À VÉRIFIER" if wide else "!")  # the record is incomplete in the export: said on opening
    warning = result.homonyms or same_birth or patient.deceased or patient.flags
    cells: tuple[Text, ...] = (
        Text(" ".join(flags), style=FLAG_STYLE if warning else CLOSE_STYLE) if flags else Text(""),
        Text(patient.birth_name.upper(), style=NAME_STYLE),
        Text(patient.used_name.upper() if patient.used_name != patient.birth_name else ""),
        Text(" ".join(patient.birth_given_names)),
        Text(born),
        Text(patient.sex.letter),
    )
    if wide:
        cells += (Text(display.IDENTITY_STATUS_FR[patient.identity_status]),)
    return cells


def _fit(text: str, width: int) -> str:
    if len(text) > width:
        return text[: width - 1] + "…"
    return text.ljust(width)


class ResultsTable(Widget):
    """Patients found, keyed by id; remembers which query the rows answer so stale rows are never opened."""

    COMPONENT_CLASSES = {
        "results-table--header", "results-table--cursor", "results-table--odd", "results-table--divider"
    }

    DEFAULT_CSS = """
    ResultsTable { height: 1fr; }
    ResultsTable > .results-table--header { text-style: bold; background: $panel; color: $text; }
    ResultsTable > .results-table--cursor { background: $primary; color: $text; text-style: bold; }
    ResultsTable > .results-table--odd { background: $boost; }
    ResultsTable > .results-table--divider { color: $warning; text-style: bold; }
    """

    @dataclass
    class Highlighted(Message):
        table: ResultsTable
        row: int

    @dataclass
    class Selected(Message):
        table: ResultsTable
        row: int

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's own keyword
        super().__init__(id=id)
        self.query_text: str | None = None
        self.results: list[SearchResult] = []
        self.wide: bool | None = None
        self.same_birth: list[bool] = []
        self.cursor_row = 0
        self._top = 0  # the first data line shown (data lines: the rows, and the divider if any)
        self.divider: int | None = None  # the row the "orthographe proche" line comes before
        self._cells: list[tuple[Text, ...]] = []
        self._header: list[Segment] = []
        self._rows: list[list[Segment]] = []
        self._today: dt.date | None = None

    # -- data

    def show(self, query_text: str, results: list[SearchResult], today: dt.date) -> None:
        self.wide = self.app.size.width >= WIDE_FROM
        self.query_text = query_text
        self.results = list(results)
        self._today = today
        shared = same_birth_keys(self.results)
        self.same_birth = [shares_birth(r, shared) for r in self.results]
        self._cells = [
            result_cells(r, today, wide=self.wide, same_birth=twin)
            for r, twin in zip(results, self.same_birth, strict=True)
        ]
        self.divider = next((index for index, result in enumerate(self.results) if result.close), None)
        self._layout()
        self.cursor_row = 0
        self._top = 0
        self.refresh()
        self.post_message(self.Highlighted(self, 0))

    def take_away(self) -> None:
        """Show no patient any more (the results could not be journaled), for the same query text."""
        self.show(self.query_text or "", [], self._today or dt.date.min)  # no row: the date is not used

    def _layout(self) -> None:
        headers = WIDE_COLUMNS if self.wide else NARROW_COLUMNS
        widths = [
            min(MAX_CELL, max([len(header)] + [len(row[i].plain) for row in self._cells]))
            for i, header in enumerate(headers)
        ]
        # Too wide for the terminal: shorten given names, then used and birth names (the line under
        # the table shows the highlighted patient in full) so the date of birth stays in view.
        overflow = 1 + sum(widths) + 2 * len(widths) - self.size.width
        for column, minimum in SHRINK_ORDER:
            if overflow <= 0:
                break
            cut = min(overflow, max(0, widths[column] - minimum))
            widths[column] -= cut
            overflow -= cut
        self._header = self._segments([Text(h) for h in headers], widths)
        self._rows = [self._segments(list(row), widths) for row in self._cells]

    @staticmethod
    def _segments(cells: list[Text], widths: list[int]) -> list[Segment]:
        segments = [Segment(" ")]
        for cell, width in zip(cells, widths, strict=True):
            segments.append(Segment(_fit(cell.plain, width), cell.style if isinstance(cell.style, Style) else None))
            segments.append(Segment("  "))
        return segments

    @property
    def row_count(self) -> int:
        return len(self.results)

    def row_cells(self, row: int) -> tuple[Text, ...]:
        return self._cells[row]

    def highlighted(self) -> SearchResult | None:
        if not self.results or not 0 <= self.cursor_row < len(self.results):
            return None
        return self.results[self.cursor_row]

    # -- cursor

    def _line_of(self, row: int) -> int:
        """The data line a row is drawn on (the divider takes one line)."""
        return row + (self.divider is not None and row >= self.divider)

    def _row_at(self, line: int) -> int | None:
        """The row drawn on a data line, None for the divider or past the end."""
        if self.divider is not None:
            if line == self.divider:
                return None
            if line > self.divider:
                line -= 1
        return line if 0 <= line < len(self.results) else None

    def move_cursor(self, *, row: int) -> None:
        if not self.results:
            return
        row = max(0, min(len(self.results) - 1, row))
        if row == self.cursor_row:
            return
        self.cursor_row = row
        visible = max(1, self.size.height - 1)
        line = self._line_of(row)
        if row == self.divider and line - 1 < self._top:
            self._top = line - 1  # show the divider with the first close row
        elif line < self._top:
            self._top = line
        elif line >= self._top + visible:
            self._top = line - visible + 1
        self.refresh()
        self.post_message(self.Highlighted(self, row))

    def on_click(self, event: events.Click) -> None:
        row = self._row_at(self._top + event.y - 1) if event.y >= 1 else None
        if row is not None:
            self.move_cursor(row=row)
            self.post_message(self.Selected(self, row))

    def on_resize(self) -> None:
        self._top = max(0, min(self._top, self._line_of(self.cursor_row)))
        if self._cells:
            self._layout()
            self.refresh()

    # -- drawing

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        if y == 0:
            if not self._header:
                return Strip.blank(width, base)
            header_style = self.get_component_rich_style("results-table--header")
            return Strip(self._header).apply_style(base + header_style).crop_extend(0, width, base + header_style)
        line = self._top + y - 1
        row = self._row_at(line)
        if row is None:
            if self.divider is None or line != self.divider:
                return Strip.blank(width, base)
            style = base + self.get_component_rich_style("results-table--divider")
            label = f" ≈ {CLOSE_DIVIDER} "
            return Strip([Segment("─" * 2 + label + "─" * max(0, width - len(label) - 2))]).apply_style(
                style
            ).crop_extend(0, width, style)
        if row == self.cursor_row:
            style = base + self.get_component_rich_style("results-table--cursor")
        elif row % 2:
            style = base + self.get_component_rich_style("results-table--odd")
        else:
            style = base
        return Strip(self._rows[row]).apply_style(style).crop_extend(0, width, style)
