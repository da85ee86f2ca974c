"""Type-ahead at unlock (issue 11, point 1): keys typed during decryption land in the search field, in order.

The unlock here is the real one (keyslot, encrypted store, weak KDF for speed), held open by a gate
the test releases: it stands for the second argon2id and decryption take on a real appliance, so
that keys can be sent while the unlock worker runs. Keys are sent three ways: in one burst (all
queued before the app reads the first, as a terminal delivers a fast typist's keys), with a short
gap after Entrée, and one by one with pauses while the unlock completes in the middle.
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest
from textual import events
from textual.pilot import Pilot
from textual.widgets import Input, Static

from continuity.session import HomeUnlocker, Session, fixed_clock
from continuity.tui.app import ContinuityApp
from continuity.tui.screens.patient import PatientScreen
from continuity.tui.screens.search import SearchScreen
from continuity.tui.screens.unlock import UnlockScreen
from continuity.tui.widgets.results import ResultsTable
from tests.transport_helpers import NOW, PASSPHRASE, Rig, make_rig, use_weak_kdf
from tests.tui.conftest import SIZE, journal_actions


class GatedUnlocker(HomeUnlocker):
    """The real unlock, started at once but finished only when the test opens the gate."""

    def __init__(self, home: Path, **kwargs: Any) -> None:
        super().__init__(home, **kwargs)
        self.started = threading.Event()
        self.gate = threading.Event()

    def unlock(self, user: str, passphrase: str) -> Session:
        self.started.set()
        if not self.gate.wait(20):
            raise TimeoutError("the test never opened the gate")
        return super().unlock(user, passphrase)


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Rig:
    use_weak_kdf(monkeypatch)
    rig = make_rig(tmp_path)
    assert rig.ingest(rig.make(1)) == "accepted"
    return rig


def gated_app(rig: Rig) -> tuple[ContinuityApp, GatedUnlocker]:
    unlocker = GatedUnlocker(rig.home, clock=fixed_clock(NOW + dt.timedelta(hours=9)))
    return ContinuityApp(unlocker, watch_store=False, print_directory=rig.tmp / "prints"), unlocker


def key_event(key: str) -> events.Key:
    if key == "enter":
        return events.Key("enter", "\r")
    if key == "space":
        return events.Key("space", " ")
    return events.Key(key, key)


def burst(app: ContinuityApp, keys: list[str]) -> None:
    """Queue every key before the app handles the first, as a terminal does with a fast typist."""
    driver = app._driver
    assert driver is not None
    for key in keys:
        driver.send_message(key_event(key))


def typed(text: str) -> list[str]:
    return ["space" if char == " " else char for char in text]


async def wait_until(pilot: Pilot[None], condition: Any, what: str, tries: int = 200) -> None:
    for _ in range(tries):
        if condition():
            return
        await pilot.pause(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def wait_for_started(pilot: Pilot[None], unlocker: GatedUnlocker) -> None:
    await wait_until(pilot, unlocker.started.is_set, "the unlock worker to start")


async def search_shows(pilot: Pilot[None], text: str) -> ResultsTable:
    def answered() -> bool:
        screen = pilot.app.screen
        tables = screen.query(ResultsTable) if isinstance(screen, SearchScreen) else []  # may be mounting
        return any(table.query_text == text for table in tables)

    await wait_until(pilot, answered, f"the results for {text!r}")
    return pilot.app.screen.query_one(ResultsTable)


def search_field(app: ContinuityApp) -> str:
    return app.screen.query_one("#search-input", Input).value


async def test_burst_passphrase_enter_and_name(rig: Rig) -> None:
    app, unlocker = gated_app(rig)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        burst(app, [*typed(PASSPHRASE), "enter", *typed("rousseau")])
        await wait_for_started(pilot, unlocker)
        assert isinstance(app.screen, UnlockScreen)
        assert app.screen.query_one("#unlock-passphrase", Input).value == PASSPHRASE  # nothing appended
        unlocker.gate.set()
        table = await search_shows(pilot, "rousseau")
        assert search_field(app) == "rousseau"
        assert table.results[0].patient.id == "pat-qual"
    actions = [action for action, _ in journal_actions(rig.home)]
    assert "unlock_failed" not in actions and actions[0] == "unlock"


async def test_short_gap_after_enter_keeps_every_key(rig: Rig) -> None:
    app, unlocker = gated_app(rig)
    async with app.run_test(size=SIZE) as pilot:
        app.screen.query_one("#unlock-passphrase", Input).value = PASSPHRASE
        await pilot.press("enter")
        await wait_for_started(pilot, unlocker)
        await pilot.pause(0.2)  # the passphrase field is disabled now: keys must not be lost on it
        await pilot.press(*typed("martin mar"))
        unlocker.gate.set()
        await search_shows(pilot, "martin mar")
        assert search_field(app) == "martin mar"


async def test_normal_speed_across_the_end_of_the_unlock(rig: Rig) -> None:
    app, unlocker = gated_app(rig)
    async with app.run_test(size=SIZE) as pilot:
        app.screen.query_one("#unlock-passphrase", Input).value = PASSPHRASE
        await pilot.press("enter")
        await wait_for_started(pilot, unlocker)
        for key in typed("rou"):
            await pilot.press(key, "wait:60")
        unlocker.gate.set()  # decryption ends while the receptionist is still typing
        for key in typed("sseau"):
            await pilot.press(key, "wait:60")
        await search_shows(pilot, "rousseau")
        assert search_field(app) == "rousseau"
        assert app.focused is not None and app.focused.id == "search-input"


async def test_enter_typed_ahead_opens_the_patient_once_found(rig: Rig) -> None:
    app, unlocker = gated_app(rig)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        burst(app, [*typed(PASSPHRASE), "enter", *typed("rousseau"), "enter"])
        await wait_for_started(pilot, unlocker)
        unlocker.gate.set()
        await wait_until(
            pilot, lambda: isinstance(app.screen, PatientScreen) and app.screen.query("#identity"), "the patient screen"
        )
        assert isinstance(app.screen, PatientScreen) and app.screen.patient_id == "pat-qual"


async def test_keys_typed_after_a_wrong_passphrase_are_dropped(rig: Rig) -> None:
    app, unlocker = gated_app(rig)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        burst(app, [*typed("mauvaise phrase"), "enter", *typed(PASSPHRASE)])
        await wait_for_started(pilot, unlocker)
        unlocker.gate.set()
        await wait_until(pilot, lambda: app.unlock_failures == 1, "the failure")
        await pilot.pause()
        assert isinstance(app.screen, UnlockScreen)
        # Neither typed into the passphrase field nor kept for later: retyped on purpose.
        assert app.screen.query_one("#unlock-passphrase", Input).value == ""
        assert "Phrase de passe incorrecte" in str(app.screen.query_one("#unlock-error", Static).render())
        assert not app.type_ahead.pending
    assert [a for a, _ in journal_actions(rig.home)].count("unlock_failed") == 1


async def test_enter_on_an_empty_passphrase_gives_the_keys_back(rig: Rig) -> None:
    app, unlocker = gated_app(rig)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        burst(app, ["enter", *typed("abc")])
        await wait_until(pilot, lambda: not app.type_ahead.pending, "the keys to be given back")
        await pilot.pause()
        assert not unlocker.started.is_set()
        assert app.screen.query_one("#unlock-passphrase", Input).value == "abc"
