"""The session the TUI drives: journal-first patient access, lock drops data, banner ages, unlockers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from continuity import snapshot_build, snapshotdb
from continuity.errors import AuthenticationError, JournalError
from continuity.journal import Journal
from continuity.keys import Role, StaffMember
from continuity.session import (
    DatabaseUnlocker,
    Freshness,
    HomeUnlocker,
    Session,
    SessionLocked,
    fixed_clock,
    freshness,
    human_bytes,
)
from tests.factories import small_practice
from tests.transport_helpers import NOW, PASSPHRASE, USER, make_rig, use_weak_kdf

TODAY = dt.date(2026, 11, 28)
CREATED = dt.datetime(2026, 11, 28, 1, 13, tzinfo=dt.UTC)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return snapshot_build.build_from_records(small_practice(TODAY), tmp_path / "s.db", created_at=CREATED).path


def session_at(db_path: Path, home: Path, now: dt.datetime, journal: Journal | None = None) -> Session:
    home.mkdir(exist_ok=True)
    return Session.from_database(snapshotdb.open_file(db_path), "accueil", journal or Journal(home),
                                 clock=fixed_clock(now))


def actions(home: Path) -> list[tuple[str, str | None]]:
    return [(e.action, e.patient_id) for e in Journal(home).entries()]


class RefusingJournal(Journal):
    def append(self, **kwargs: Any) -> Any:
        if kwargs["action"] == "view_patient":
            raise JournalError("disk full")
        return super().append(**kwargs)


def test_open_patient_journals_before_reading(db_path: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    session = session_at(db_path, home, CREATED + dt.timedelta(hours=15))
    view = session.open_patient("pat-qual")
    assert view.summary.patient.birth_name == "ROUSSEAU"
    assert view.practitioners["prac-1"].family_name == "Garnier"
    assert actions(home) == [("unlock", None), ("view_patient", "pat-qual")]


def test_journal_failure_returns_nothing(db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    session = session_at(db_path, home, CREATED, RefusingJournal(home))
    read: list[str] = []
    monkeypatch.setattr(snapshotdb.SnapshotDB, "summary", lambda *a, **k: read.append("summary"))
    with pytest.raises(JournalError):
        session.open_patient("pat-qual")
    assert read == []  # the database was not even read


def test_lock_drops_the_database_and_journals(db_path: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    session = session_at(db_path, home, CREATED)
    db = session.db
    session.lock()
    assert session.is_locked
    with pytest.raises(SessionLocked):
        session.search("martin")
    with pytest.raises(Exception, match="closed"):
        db.counts()
    session.lock()  # twice is harmless
    assert actions(home)[-1] == ("lock", None)


def test_banner_ages_and_levels(db_path: Path, tmp_path: Path) -> None:
    session = session_at(db_path, tmp_path / "home", CREATED + dt.timedelta(hours=15))
    banner = session.banner()
    assert banner.headline == "MODE DÉGRADÉ — données du 28/11/2026 à 02:13 (il y a 15 h)"
    assert banner.freshness is Freshness.FRESH
    assert banner.practice_name == "Cabinet des Lilas" and banner.user == "accueil"
    assert freshness(dt.timedelta(hours=36)) is Freshness.AMBER
    assert freshness(dt.timedelta(days=7)) is Freshness.RED
    assert session.today() == TODAY


def test_status_in_dev_mode(db_path: Path, tmp_path: Path) -> None:
    status = session_at(db_path, tmp_path / "home", CREATED).status()
    assert status.dev_mode and status.sequence is None
    assert status.counts["patient"] == 11


def test_agenda_and_search(db_path: Path, tmp_path: Path) -> None:
    session = session_at(db_path, tmp_path / "home", CREATED)
    assert [e.appointment.id for e in session.agenda(TODAY, TODAY)] == ["apt-1", "apt-2"]
    assert session.search("ndiaye")[0].patient.id == "pat-ndiaye"


def test_database_unlocker_journals_to_the_home(db_path: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    unlocker = DatabaseUnlocker(db_path, home, user="dev")
    assert unlocker.staff() == ["dev"] and unlocker.last_user() == "dev"
    session = unlocker.unlock("dev", "")
    assert actions(home) == [("unlock", None)]
    session.lock()


def test_real_unlock_wrong_and_good_passphrase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_weak_kdf(monkeypatch)
    rig = make_rig(tmp_path)
    rig.ingest(rig.make(1))
    unlocker = HomeUnlocker(rig.home, clock=fixed_clock(NOW))
    assert unlocker.staff() == [USER] and unlocker.last_user() is None
    with pytest.raises(AuthenticationError):
        unlocker.unlock(USER, "pas la bonne phrase")
    session = unlocker.unlock(USER, PASSPHRASE)
    assert unlocker.last_user() == USER
    assert session.sequence == 1 and not session.dev_mode
    assert session.member == StaffMember(USER, Role.RECEPTION, "")  # as the signed roster says
    status = session.status()
    assert status.publisher_fingerprints and status.kept_snapshots and status.disk_free_bytes
    assert [a.outcome for a in status.pull_attempts] == []
    assert session.newest_stored_sequence() == 1
    assert session.switch_to_newest() is False
    rig.ingest(rig.make(2))
    assert session.newest_stored_sequence() == 2
    assert session.switch_to_newest() is True and session.sequence == 2
    session.lock()
    assert [a for a, _ in actions(rig.home)] == [
        "unlock_failed", "unlock", "checkpoint", "snapshot_switch", "lock", "checkpoint",
    ]
    failed, unlocked = list(Journal(rig.home).entries())[:2]
    assert failed.details == {"reason": "AuthenticationError", "command": "unlock"}
    assert unlocked.details["role"] == "reception"


def test_dev_mode_sessions_are_reception_unless_told(db_path: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    assert DatabaseUnlocker(db_path, home).unlock("dev", "").member == StaffMember("dev", Role.RECEPTION)
    doctor = DatabaseUnlocker(db_path, home, user="dr.test", role=Role.PRESCRIBER, rpps="10101010105")
    assert doctor.unlock("dr.test", "").member.is_prescriber


def test_human_bytes() -> None:
    assert human_bytes(512) == "512 o"
    assert human_bytes(3 * 1024 * 1024) == "3,0 Mo"
    assert human_bytes(None) == "inconnu"
