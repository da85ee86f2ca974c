"""Fixtures for the whole suite."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# A desk's printer becomes the process's CUPS default (continuity.desk.use_printer sets PRINTER and
# LPDEST, as `continuity tui --desk` does at start and whenever the desk list changes). Tests that open
# a desk in-process would leave it to every later test: each test starts with none, and the variables
# are put back as they were.
CUPS_DEFAULTS = ("PRINTER", "LPDEST")


@pytest.fixture(autouse=True)
def _no_desk_printer_between_tests() -> Iterator[None]:
    saved = {name: os.environ.pop(name, None) for name in CUPS_DEFAULTS}
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
