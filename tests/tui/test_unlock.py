"""Pilot tests on a real appliance home: keyslots, encrypted store, fallback, banner states, live update."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Select, Static

from continuity import snapshot_build
from continuity.session import HomeUnlocker, fixed_clock
from continuity.tui.app import ContinuityApp
from continuity.tui.screens.dialogs import AcknowledgeOldData
from continuity.tui.screens.patient import PatientScreen
from continuity.tui.screens.search import SearchScreen
from continuity.tui.screens.unlock import UnlockScreen
from continuity.tui.widgets.banner import Banner
from tests.factories import patient, small_practice
from tests.transport_helpers import NOW, PASSPHRASE, USER, Rig, flip_byte, make_rig, use_weak_kdf
from tests.tui.conftest import SIZE, journal_actions


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Rig:
    use_weak_kdf(monkeypatch)
    rig = make_rig(tmp_path)
    assert rig.ingest(rig.make(1)) == "accepted"
    return rig


def app_for(rig: Rig, *, now: dt.datetime = NOW + dt.timedelta(hours=9), watch: bool = False) -> ContinuityApp:
    app = ContinuityApp(HomeUnlocker(rig.home, clock=fixed_clock(now)), watch_store=watch,
                        print_directory=rig.tmp / "prints")
    return app


async def settle(pilot: Pilot[None]) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def type_passphrase(pilot: Pilot[None], passphrase: str) -> None:
    field = pilot.app.screen.query_one("#unlock-passphrase", Input)
    field.value = passphrase
    await pilot.press("enter")
    await settle(pilot)


def text_of(widget: Static) -> str:
    return str(widget.render())


async def test_good_passphrase_unlocks_the_encrypted_snapshot(rig: Rig) -> None:
    app = app_for(rig)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, UnlockScreen)
        assert screen.query_one("#unlock-user", Select).value == USER  # the only staff member
        assert app.focused is not None and app.focused.id == "unlock-passphrase"
        await type_passphrase(pilot, PASSPHRASE)
        assert isinstance(app.screen, SearchScreen)
        assert app.session is not None and app.session.sequence == 1
        banner = text_of(app.screen.query_one(Banner))
        assert "MODE DÉGRADÉ — données du 28/11/2026 à 06:00 (il y a 9 h)" in banner
    actions = [action for action, _ in journal_actions(rig.home)]
    assert actions[:2] == ["unlock", "checkpoint"]
    assert actions[-2:] == ["lock", "checkpoint"]  # quitting locks


async def test_wrong_passphrase_then_growing_delay(rig: Rig) -> None:
    app = app_for(rig)
    async with app.run_test(size=SIZE) as pilot:
        for attempt in range(1, 6):
            await type_passphrase(pilot, f"mauvaise phrase {attempt}")
            assert isinstance(app.screen, UnlockScreen)
            error = text_of(app.screen.query_one("#unlock-error", Static))
            if attempt < 5:
                assert "Phrase de passe incorrecte" in error
                assert not app.screen.query_one("#unlock-passphrase", Input).disabled
        assert app.unlock_failures == 5
        assert "Trop d'essais incorrects (5). Patientez 2 s" in text_of(app.screen.query_one("#unlock-error", Static))
        assert app.screen.query_one("#unlock-passphrase", Input).disabled
        await pilot.pause(2.2)
        assert not app.screen.query_one("#unlock-passphrase", Input).disabled
        await type_passphrase(pilot, PASSPHRASE)
        assert isinstance(app.screen, SearchScreen)
    assert [a for a, _ in journal_actions(rig.home)].count("unlock_failed") == 5


async def test_banner_is_amber_after_36_hours(rig: Rig) -> None:
    app = app_for(rig, now=NOW + dt.timedelta(hours=40))
    async with app.run_test(size=SIZE) as pilot:
        await type_passphrase(pilot, PASSPHRASE)
        banner = app.screen.query_one(Banner)
        assert banner.has_class("-amber") and not banner.has_class("-red")
        assert "données anciennes" in text_of(banner)


async def test_banner_is_red_after_7_days_with_one_acknowledgement(rig: Rig) -> None:
    app = app_for(rig, now=NOW + dt.timedelta(days=8))
    async with app.run_test(size=SIZE) as pilot:
        await type_passphrase(pilot, PASSPHRASE)
        assert isinstance(app.screen, AcknowledgeOldData)
        await pilot.press("enter")
        assert isinstance(app.screen, SearchScreen)
        banner = app.screen.query_one(Banner)
        assert banner.has_class("-red")
        assert "il y a 8 j" in text_of(banner)
        await pilot.press("ctrl+l")
        await type_passphrase(pilot, PASSPHRASE)
        assert isinstance(app.screen, SearchScreen)  # acknowledged once for this snapshot


async def test_failed_pull_is_shown_in_the_banner(rig: Rig) -> None:
    rig.store.record_attempt(source="https://editeur.example/cabinet.snap", outcome="rejected", reason="expired",
                             detail="expired", now=NOW + dt.timedelta(hours=2))
    app = app_for(rig)
    async with app.run_test(size=SIZE) as pilot:
        await type_passphrase(pilot, PASSPHRASE)
        banner = text_of(app.screen.query_one(Banner))
        assert "Récupération en échec le 28/11/2026 à 09:00" in banner
        assert "périmé" in banner


async def test_unreadable_newest_snapshot_falls_back_and_says_so(rig: Rig) -> None:
    assert rig.ingest(rig.make(2)) == "accepted"
    current = rig.store.current_path()
    assert current is not None
    current.write_bytes(flip_byte(current.read_bytes(), -100))
    app = app_for(rig)
    async with app.run_test(size=SIZE) as pilot:
        await type_passphrase(pilot, PASSPHRASE)
        assert isinstance(app.screen, SearchScreen)
        assert app.session is not None and app.session.sequence == 1
        assert "données précédentes affichées" in text_of(app.screen.query_one(Banner))


async def test_live_update_switches_without_losing_the_place(rig: Rig, tmp_path: Path) -> None:
    app = app_for(rig, watch=True)
    app.switch_after_quiet = 0.2
    async with app.run_test(size=SIZE) as pilot:
        await type_passphrase(pilot, PASSPHRASE)
        search_input = app.screen.query_one("#search-input", Input)
        search_input.value = "rousseau"
        await settle(pilot)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, PatientScreen)
        # The night's pull lands a newer snapshot with one more patient.
        records = [*small_practice(), patient("NOUVEAU", "Arrivé", "2000-01-01", id="pat-new")]
        newer = snapshot_build.build_from_records(records, tmp_path / "newer.db", practice_id="cabinet-lilas")
        assert rig.ingest(rig.make(2, database=newer.path, counts=newer.counts)) == "accepted"
        for _ in range(60):
            await pilot.pause(0.1)
            if app.session is not None and app.session.sequence == 2:
                break
        await settle(pilot)
        assert app.session is not None and app.session.sequence == 2
        assert isinstance(app.screen, PatientScreen) and app.screen.patient_id == "pat-qual"
        assert "ROUSSEAU" in text_of(app.screen.query_one("#identity", Static))
        await pilot.press("escape")
        assert isinstance(app.screen, SearchScreen)
        assert app.screen.query_one("#search-input", Input).value == "rousseau"
        assert app.session.search("nouveau")[0].patient.id == "pat-new"
    assert ("snapshot_switch", None) in journal_actions(rig.home)


async def test_no_snapshot_yet_is_said_in_french(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_weak_kdf(monkeypatch)
    rig = make_rig(tmp_path)  # initialised, nothing pulled yet
    app = app_for(rig)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2", "f3", "f4")  # nothing to show while locked
        assert isinstance(app.screen, UnlockScreen)
        await type_passphrase(pilot, PASSPHRASE)
        assert isinstance(app.screen, UnlockScreen) and app.session is None
        assert "Aucune donnée n'a encore été reçue sur ce poste" in text_of(
            app.screen.query_one("#unlock-error", Static)
        )
