"""Fixtures for the TUI tests: a small practice database, a fixed clock, apps in dev and real mode."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from continuity import snapshot_build
from continuity.errors import JournalError
from continuity.journal import Journal
from continuity.keys import Role
from continuity.session import DatabaseUnlocker, fixed_clock
from continuity.tui.app import ContinuityApp
from tests.factories import small_practice
from tests.unit.journal_helpers import make_appliance

TODAY = dt.date(2026, 11, 28)
CREATED_AT = dt.datetime(2026, 11, 28, 1, 13, tzinfo=dt.UTC)  # 02:13 in Paris
NOW = dt.datetime(2026, 11, 28, 17, 13, tzinfo=dt.UTC)  # 15 h later
SIZE = (100, 30)


@pytest.fixture
def practice_db(tmp_path: Path) -> Path:
    return snapshot_build.build_from_records(
        small_practice(TODAY), tmp_path / "practice.db", created_at=CREATED_AT
    ).path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home with the appliance public keys (the journal seals printed prescriptions to them)."""
    return make_appliance(tmp_path / "home").home


class FailingJournal(Journal):
    """A journal whose disk is full: every append fails."""

    def append(self, **kwargs: Any) -> Any:
        if kwargs.get("action") == "view_patient":
            raise JournalError("journal/2026-11.jsonl: No space left on device")
        return super().append(**kwargs)


class FailingUnlocker(DatabaseUnlocker):
    def unlock(self, user: str, passphrase: str) -> Any:
        session = super().unlock(user, passphrase)
        session.journal = FailingJournal(self.home)
        return session


AppMaker = Callable[..., ContinuityApp]


@pytest.fixture
def make_app(practice_db: Path, home: Path) -> AppMaker:
    def make(*, now: dt.datetime = NOW, idle_minutes: float = 5.0, failing_journal: bool = False,
             db: Path | None = None, prescriber: bool = False) -> ContinuityApp:
        unlocker_type = FailingUnlocker if failing_journal else DatabaseUnlocker
        # A prescriber (the practice's Dr Garnier, RPPS of tests/factories) or the reception login.
        role = {"role": Role.PRESCRIBER, "rpps": "10001234567"} if prescriber else {}
        unlocker = unlocker_type(db or practice_db, home, user="dr.garnier" if prescriber else "accueil",
                                 clock=fixed_clock(now), **role)
        return ContinuityApp(unlocker, idle_minutes=idle_minutes, watch_store=False,
                             print_directory=home.parent / "prints")

    return make


def journal_actions(home: Path) -> list[tuple[str, str | None]]:
    return [(entry.action, entry.patient_id) for entry in Journal(home).entries()]
