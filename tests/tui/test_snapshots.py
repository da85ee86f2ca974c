"""SVG snapshots of the main screens at 100×30 and 80×24 (fixed clock, fixed data, fixed prescription id).

Update after a deliberate change with `pytest tests/tui/test_snapshots.py --snapshot-update`, then look
at the SVGs under __snapshots__/ before committing them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from continuity import snapshot_build
from continuity.drugs import bdpm
from continuity.tui.app import ContinuityApp
from continuity.tui.widgets.results import ResultsTable
from tests.factories import small_practice
from tests.prescribing_helpers import BDPM_FIXTURE
from tests.tui.conftest import CREATED_AT, TODAY, AppMaker

SIZES = [pytest.param((100, 30), id="100x30"), pytest.param((80, 24), id="80x24")]

Step = Callable[[Pilot[None]], Awaitable[None]]


async def settle(pilot: Pilot[None]) -> None:
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


async def unlocked(pilot: Pilot[None]) -> None:
    await pilot.press("enter")
    await settle(pilot)


async def search(pilot: Pilot[None], text: str) -> None:
    pilot.app.screen.query_one("#search-input", Input).value = text
    for _ in range(50):
        await settle(pilot)
        if pilot.app.screen.query_one(ResultsTable).query_text == text:
            return
    raise AssertionError(f"no results for {text!r}")


async def on_search(pilot: Pilot[None]) -> None:
    await unlocked(pilot)
    await search(pilot, "martin")


async def on_patient(pilot: Pilot[None]) -> None:
    await unlocked(pilot)
    await search(pilot, "rousseau")
    await pilot.press("enter")
    await settle(pilot)


async def on_agenda(pilot: Pilot[None]) -> None:
    await unlocked(pilot)
    await pilot.press("f3")
    await settle(pilot)


async def on_prescription(pilot: Pilot[None]) -> None:
    await on_patient(pilot)
    await pilot.press("o")
    await settle(pilot)


async def on_add_line(pilot: Pilot[None]) -> None:
    await on_prescription(pilot)
    await pilot.press("a")
    await settle(pilot)
    await pilot.press(*"amox")
    await settle(pilot)


async def on_acknowledge(pilot: Pilot[None]) -> None:
    await on_prescription(pilot)
    await pilot.press("a")
    screen = pilot.app.screen
    for name, value in (("dci", "amoxicilline"), ("strength", "500 mg"), ("form", "gélule"),
                        ("posology", "1 gélule 3 fois par jour pendant 7 jours"), ("duration", "7 j")):
        screen.query_one(f"#add-{name}", Input).value = value
    screen.query_one("#add-duration", Input).focus()
    await pilot.press("enter", "enter")
    await settle(pilot)
    # The "line added" toast lives a few seconds: how many are left depends on the machine's load.
    pilot.app.clear_notifications()
    await pilot.press("p")
    await settle(pilot)


async def on_help(pilot: Pilot[None]) -> None:
    await unlocked(pilot)
    await pilot.press("f1")
    await settle(pilot)


async def on_status(pilot: Pilot[None]) -> None:
    await unlocked(pilot)
    await pilot.press("f4")
    await settle(pilot)


async def on_unlock(pilot: Pilot[None]) -> None:
    await settle(pilot)


def prepared(make_app: AppMaker, *, prescriber: bool = False, db: Path | None = None) -> ContinuityApp:
    app = make_app(prescriber=prescriber, db=db)
    app.prescription_ids = lambda: "0f3a9c2e5b7d4e61a8c0b2d4f6e8a0c1"
    return app


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(
    "step",
    [
        pytest.param(on_unlock, id="unlock"),
        pytest.param(on_search, id="search"),
        pytest.param(on_patient, id="patient"),
        pytest.param(on_agenda, id="agenda"),
        pytest.param(on_prescription, id="prescription"),
        pytest.param(on_add_line, id="prescription-add-line"),
        pytest.param(on_acknowledge, id="prescription-acknowledge"),
        pytest.param(on_status, id="status"),
        pytest.param(on_help, id="help"),
    ],
)
def test_screen(snap_compare: Any, make_app: AppMaker, step: Step, size: tuple[int, int], tmp_path: Path) -> None:
    # An ordonnance is opened by a prescriber (reception is refused): those screens log in as Dr Garnier,
    # on the practice published with the BDPM test subset (DCI completion, routes from the reference).
    prescriber = step in (on_prescription, on_add_line, on_acknowledge)
    db = None
    if prescriber:
        db = snapshot_build.build_from_records(small_practice(TODAY), tmp_path / "drugs.db", created_at=CREATED_AT,
                                               drugs=bdpm.read(BDPM_FIXTURE)).path
    assert snap_compare(prepared(make_app, prescriber=prescriber, db=db), terminal_size=size, run_before=step)
