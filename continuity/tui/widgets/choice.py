"""A drop-down list in French: Textual's Select, whose open list says 'Dismiss menu' in the footer."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Select
from textual.widgets._select import SelectCurrent, SelectOverlay


class FrenchSelectOverlay(SelectOverlay):
    """The open list: Échap closes it, said in French."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss", "Fermer la liste")]


class Choice(Select[str]):
    """Select with the French overlay; everything else is Textual's (Entrée opens, letters jump)."""

    def compose(self) -> ComposeResult:
        # Select.compose, with our overlay: the footer of an open list must not show English.
        yield SelectCurrent(self.prompt)
        yield FrenchSelectOverlay(type_to_search=self._type_to_search).data_bind(compact=Select.compact)
