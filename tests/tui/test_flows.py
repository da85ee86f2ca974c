"""Pilot tests of the receptionist's flows, in dev mode on a small practice (no keys needed)."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input, Static

from continuity.tui.screens.agenda import AgendaScreen
from continuity.tui.screens.dialogs import HelpScreen, MessageScreen
from continuity.tui.screens.patient import PatientScreen
from continuity.tui.screens.search import SearchScreen
from continuity.tui.screens.status import StatusScreen
from continuity.tui.screens.unlock import UnlockScreen
from continuity.tui.widgets.banner import Banner
from continuity.tui.widgets.results import HOMONYM_FLAG, ResultsTable
from tests.tui.conftest import SIZE, AppMaker, journal_actions


def text_of(widget: Static) -> str:
    return str(widget.render())


async def unlock(pilot: object) -> None:
    from textual.pilot import Pilot

    assert isinstance(pilot, Pilot)
    await pilot.press("enter")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def type_query(pilot: object, text: str) -> ResultsTable:
    from textual.pilot import Pilot

    assert isinstance(pilot, Pilot)
    await pilot.press(*text)
    for _ in range(50):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        table = pilot.app.screen.query_one(ResultsTable)
        if table.query_text == text:
            return table
    raise AssertionError(f"the table never showed the results for {text!r}")


def row_ids(table: ResultsTable) -> list[str]:
    return [r.patient.id for r in table.results]


async def test_unlock_lands_in_search_with_cursor_in_the_field(make_app: AppMaker, home: Path) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, UnlockScreen)
        assert app.focused is not None and app.focused.id == "unlock-passphrase"
        await unlock(pilot)
        assert isinstance(app.screen, SearchScreen)
        assert app.focused is not None and app.focused.id == "search-input"
        banner = text_of(app.screen.query_one(Banner))
        assert "MODE DÉGRADÉ — données du 28/11/2026 à 02:13 (il y a 16 h)" in banner
        assert "Cabinet des Lilas" in banner and "accueil" in banner
    assert ("unlock", None) in journal_actions(home)


async def test_search_with_and_without_accents(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        table = await type_query(pilot, "lefevre")
        assert row_ids(table) == ["pat-lefevre"]
        app.screen.query_one("#search-input", Input).value = ""
        table = await type_query(pilot, "Lefèvre-Çelik")
        assert row_ids(table) == ["pat-lefevre"]
        app.screen.query_one("#search-input", Input).value = ""
        table = await type_query(pilot, "oeuvray")
        assert row_ids(table) == ["pat-oeuvray"]


async def test_homonyms_are_flagged(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        table = await type_query(pilot, "martin marie")
        assert set(row_ids(table)[:2]) == {"pat-martin-1", "pat-martin-2"}
        flags = [table.row_cells(i)[0].plain for i in range(2)]
        assert flags == [HOMONYM_FLAG, HOMONYM_FLAG]
        detail = text_of(app.screen.query_one("#search-detail", Static))
        assert "Homonyme : vérifier la date de naissance" in detail
        assert "MARTIN Marie — née le" in detail


async def test_arrows_move_and_enter_opens_the_highlighted_patient(make_app: AppMaker, home: Path) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        table = await type_query(pilot, "martin")
        second = table.results[1].patient.id
        await pilot.press("down", "enter")
        await pilot.pause()
        assert isinstance(app.screen, PatientScreen)
        assert app.screen.patient_id == second
        await pilot.press("escape")
        assert isinstance(app.screen, SearchScreen)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, PatientScreen)
    assert ("view_patient", second) in journal_actions(home)


async def test_enter_typed_before_the_results_opens_the_first_when_they_come(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        await pilot.press(*"rousseau", "enter")
        await pilot.app.workers.wait_for_complete()
        for _ in range(20):
            await pilot.pause()
        assert isinstance(app.screen, PatientScreen)
        assert app.screen.patient_id == "pat-qual"


async def open_by_search(pilot: object, text: str) -> PatientScreen:
    from textual.pilot import Pilot

    assert isinstance(pilot, Pilot)
    await type_query(pilot, text)
    await pilot.press("enter")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, PatientScreen)
    return screen


async def test_allergy_states_are_distinct(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        screen = await open_by_search(pilot, "rousseau")
        allergies = screen.query_one("#allergies", Static)
        assert "ALLERGIES : Amoxicilline (Urticaire)" in text_of(allergies)
        assert allergies.has_class("-recorded")
        identity = text_of(screen.query_one("#identity", Static))
        assert "ROUSSEAU Jacques — né le 12/03/1951 — Masculin (75 ans)" in identity
        assert "INS 151037512345658" in identity
        treatments = text_of(screen.query_one("#treatments", Static))
        assert "metformine 1000 mg comprimé" in treatments and "Non substituable (MTE)" in treatments
        assert "prescrit par Dr Hélène Garnier" in treatments
        assert "[ALD] Diabète de type 2" in text_of(screen.query_one("#conditions", Static))
        await pilot.press("escape", "escape")
        screen = await open_by_search(pilot, "oeuvray")
        allergies = screen.query_one("#allergies", Static)
        assert text_of(allergies) == "Aucune allergie connue"
        assert allergies.has_class("-none-known")
        await pilot.press("escape", "escape")
        screen = await open_by_search(pilot, "12/03/1951 martin")
        allergies = screen.query_one("#allergies", Static)
        assert text_of(allergies) == "Allergies : information non disponible"
        assert allergies.has_class("-no-information")
        assert "Homonyme : vérifier la date de naissance" in text_of(screen.query_one("#identity", Static))


async def test_weight_with_its_date(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        screen = await open_by_search(pilot, "bernard leo")
        identity = text_of(screen.query_one("#identity", Static))
        assert "Poids : 11,2 kg, le 01/10/2026 — il y a 58 jours" in identity
        assert "⚠" not in identity.split("Poids")[1]  # a 3-year-old weighed 2 months ago: recent enough


async def test_agenda_enter_opens_the_patient(make_app: AppMaker, home: Path) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        await pilot.press("f3")
        await pilot.pause()
        assert isinstance(app.screen, AgendaScreen)
        assert len(app.screen.entries) == 2
        rows = [str(cell) for cell in app.screen.query_one("DataTable").get_row_at(2)]  # type: ignore[attr-defined]
        assert rows[0] == "09:20" and rows[1].startswith("N'DIAYE Moussa")
        assert rows[2] == "14/02/1990" and rows[3] == "06 12 34 56 78"
        await pilot.press("enter")  # the cursor starts on the first appointment
        await pilot.pause()
        assert isinstance(app.screen, PatientScreen)
        assert app.screen.patient_id == "pat-qual"
        await pilot.press("escape")
        assert isinstance(app.screen, AgendaScreen)
        await pilot.press("right")
        assert app.screen.entries == []
    assert ("view_patient", "pat-qual") in journal_actions(home)


async def test_journal_failure_refuses_display(make_app: AppMaker) -> None:
    app = make_app(failing_journal=True)
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        await type_query(pilot, "rousseau")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, MessageScreen)
        assert "Dossier non affiché" in app.screen.title_text
        assert "journal d'accès ne peut pas être écrit" in app.screen.body
        assert not any(isinstance(screen, PatientScreen) for screen in app.screen_stack)
        await pilot.press("enter")
        assert isinstance(app.screen, SearchScreen)


async def test_lock_key_drops_the_data(make_app: AppMaker, home: Path) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        await open_by_search(pilot, "rousseau")
        session = app.session
        assert session is not None
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert isinstance(app.screen, UnlockScreen)
        assert app.session is None and session.is_locked
        assert len(app.screen_stack) == 2
        assert "Session verrouillée" in text_of(app.screen.query_one("#unlock-error", Static))
    assert journal_actions(home)[-1] == ("lock", None)


async def test_idle_auto_lock(make_app: AppMaker, home: Path) -> None:
    app = make_app(idle_minutes=0)  # armed below, once the patient is open: a loaded machine must not
    async with app.run_test(size=SIZE) as pilot:  # lock the app before the test has opened the record
        await unlock(pilot)
        await open_by_search(pilot, "rousseau")
        assert isinstance(app.screen, PatientScreen)
        app.idle_seconds = 0.5
        for _ in range(100):  # the idle tick runs every second; allow for a slow machine
            if isinstance(app.screen, UnlockScreen):
                break
            await pilot.pause(0.1)
        assert isinstance(app.screen, UnlockScreen)
        assert app.session is None
        for _ in range(100):  # let the unlock screen mount its widgets, the name list's label last
            if app.screen.query("#unlock-error") and app.screen.query("#label"):
                break
            await pilot.pause(0.05)
        assert "inactivité" in text_of(app.screen.query_one("#unlock-error", Static))
    lock_entries = [e for e in journal_actions(home) if e[0] == "lock"]
    assert lock_entries


async def test_help_lists_every_key_and_status_screen(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.press("f4")
        await pilot.pause()
        assert isinstance(app.screen, StatusScreen)
        text = text_of(app.screen.query_one("#status-text", Static))
        assert "Patients 11" in text and "mode développement" in text
        await pilot.press("f2")
        assert isinstance(app.screen, SearchScreen)


async def test_twins_are_flagged_to_check_the_given_name(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        table = await type_query(pilot, "bernard")
        assert set(row_ids(table)) == {"pat-twin-1", "pat-twin-2"}
        assert [table.row_cells(i)[0].plain for i in range(2)] == ["⚠ JUMEAU ?", "⚠ JUMEAU ?"]
        detail = text_of(app.screen.query_one("#search-detail", Static))
        assert "Même nom et même date de naissance qu'un autre patient : vérifier le prénom" in detail
