"""Pilot tests of the ordonnance flow: renew everything in two keys (o, Entrée), warnings to confirm, refusals."""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input, Static

from continuity.journal import Journal
from continuity.tui.screens.dialogs import MessageScreen
from continuity.tui.screens.patient import PatientScreen
from continuity.tui.screens.prescription import ConfirmPrint, PrescriptionScreen
from tests.tui.conftest import SIZE, AppMaker
from tests.tui.test_flows import open_by_search, unlock


def text_of(widget: Static) -> str:
    return str(widget.render())


async def wait_printed(pilot: Pilot[None]) -> None:
    for _ in range(100):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.05)
        if not isinstance(pilot.app.screen, PrescriptionScreen):
            return


async def test_renew_everything_preview_confirm_print(make_app: AppMaker, home: Path, tmp_path: Path,
                                                      monkeypatch: object) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        await open_by_search(pilot, "rousseau")
        await pilot.press("o")
        screen = app.screen
        assert isinstance(screen, PrescriptionScreen)
        assert screen.plan is not None and len(screen.plan.prescription.lines) == 2
        preview = text_of(screen.query_one("#rx-preview", Static))
        assert "metformine" in preview and "lévothyroxine" in preview
        assert "AFFECTION EXONÉRANTE" in preview  # bizone: metformine is linked to the ALD
        await pilot.press("enter")  # no warning: the preview was the confirmation
        await wait_printed(pilot)
        # No printer in the test machine: the PDF is saved where the app was told, and the user told where.
        assert isinstance(app.screen, MessageScreen)
        assert "enregistrée dans" in app.screen.body
        saved = list((home.parent / "prints").glob("ordonnance-*.pdf"))
        assert len(saved) == 1 and saved[0].read_bytes().startswith(b"%PDF")
    entries = [e for e in Journal(home).entries() if e.action == "print_prescription"]
    assert len(entries) == 1 and entries[0].patient_id == "pat-qual"
    assert entries[0].details["line_count"] == 2


async def test_allergy_warning_needs_a_typed_confirmation(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        await open_by_search(pilot, "rousseau")
        await pilot.press("o", "a")
        screen = app.screen
        assert isinstance(screen, PrescriptionScreen)
        field = screen.query_one("#rx-new", Input)
        assert field.has_focus
        field.value = "amoxicilline|1 g|comprimé|1 comprimé matin et soir|7 j"
        await pilot.press("enter")
        assert screen.plan is not None and screen.plan.warnings
        assert "ALLERGIE" in text_of(screen.query_one("#rx-warnings", Static))
        await pilot.press("p")
        assert isinstance(app.screen, ConfirmPrint) and app.screen.warnings
        await pilot.press("enter")  # Entrée does not confirm a warning
        assert isinstance(app.screen, ConfirmPrint)
        await pilot.press("escape")
        assert isinstance(app.screen, PrescriptionScreen)


async def test_narcotic_line_is_refused(make_app: AppMaker, home: Path) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        await open_by_search(pilot, "rousseau")
        await pilot.press("o", "a")
        screen = app.screen
        assert isinstance(screen, PrescriptionScreen)
        screen.query_one("#rx-new", Input).value = "morphine|10 mg|comprimé|1 comprimé matin et soir|7 j"
        await pilot.press("enter")
        assert screen.plan is None
        assert "ORDONNANCE SÉCURISÉE" in text_of(screen.query_one("#rx-warnings", Static))
        await pilot.press("p")
        assert isinstance(app.screen, PrescriptionScreen)  # nothing to confirm, nothing printed
        await pilot.press("escape")
        assert isinstance(app.screen, PatientScreen)
    assert not [e for e in Journal(home).entries() if e.action == "print_prescription"]


async def test_print_summary_is_journaled_then_saved_without_a_printer(make_app: AppMaker, home: Path) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        await open_by_search(pilot, "rousseau")
        await pilot.press("p")
        for _ in range(100):
            await app.workers.wait_for_complete()
            await pilot.pause(0.05)
            if isinstance(app.screen, MessageScreen):
                break
        assert isinstance(app.screen, MessageScreen)
        assert "enregistr" in app.screen.body
        saved = list((home.parent / "prints").glob("resume-pat-qual*.pdf"))
        assert len(saved) == 1 and saved[0].read_bytes().startswith(b"%PDF")
    assert [(e.action, e.patient_id) for e in Journal(home).entries() if e.action == "print_summary"] == [
        ("print_summary", "pat-qual")
    ]


async def test_agenda_day_list_is_journaled_and_saved(make_app: AppMaker, home: Path) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        await pilot.press("f3")
        await pilot.press("p")
        for _ in range(100):
            await app.workers.wait_for_complete()
            await pilot.pause(0.05)
            if isinstance(app.screen, MessageScreen):
                break
        saved = list((home.parent / "prints").glob("agenda-2026-11-28*.txt"))
        assert len(saved) == 1
        text = saved[0].read_text()
        assert "Dr Hélène Garnier" in text and "09:20  N'DIAYE Moussa" in text and "06 12 34 56 78" in text
    exports = [e for e in Journal(home).entries() if e.action == "export"]
    assert len(exports) == 1 and exports[0].details == {"what": "day_list", "day": "2026-11-28"}
