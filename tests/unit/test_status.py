"""Status classification: ages, expiry, rejections, alarms that stay up until a good file arrives."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from continuity import status
from tests.transport_helpers import NOW, Rig, make_rig, use_weak_kdf


@pytest.fixture(autouse=True)
def _weak_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    use_weak_kdf(monkeypatch)


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    made = make_rig(tmp_path)
    made.ingest(made.make(1))
    made.store.record_attempt(source="s", outcome="accepted", sequence=1, now=NOW)
    return made


def test_fresh_is_ok_with_perfdata(rig: Rig) -> None:
    report = status.compute_status(rig.home, now=NOW)
    assert report.code == status.OK
    assert report.headline().startswith("CONTINUITY OK - snapshot #1")
    assert "| age=3599s;129600;604800;0" in report.headline()


def test_ages_and_expiry(rig: Rig) -> None:
    assert status.compute_status(rig.home, now=NOW + dt.timedelta(hours=40)).code == status.WARNING
    assert status.compute_status(rig.home, now=NOW + dt.timedelta(days=8)).code == status.CRITICAL
    expired = status.compute_status(rig.home, now=NOW + dt.timedelta(hours=48), warn_age=dt.timedelta(days=3))
    assert expired.code == status.WARNING and "expired" in expired.problems[0]


def test_a_rejection_warns_and_an_alarm_stays_until_accepted(rig: Rig) -> None:
    rig.store.record_attempt(source="s", outcome="rejected", reason="truncated", detail="cut", now=NOW)
    assert status.compute_status(rig.home, now=NOW).code == status.WARNING
    rig.store.record_attempt(source="s", outcome="rejected", reason="equivocation", detail="two files", now=NOW)
    rig.store.record_attempt(source="s", outcome="unchanged", now=NOW)
    report = status.compute_status(rig.home, now=NOW)
    assert report.code == status.CRITICAL and "equivocation" in report.problems[0]
    rig.ingest(rig.make(2))
    rig.store.record_attempt(source="s", outcome="accepted", sequence=2, now=NOW)
    assert status.compute_status(rig.home, now=NOW).code == status.OK


def test_store_error_warns(rig: Rig) -> None:
    rig.store.record_attempt(source="s", outcome="error", reason="store", detail="disk full", now=NOW)
    assert status.compute_status(rig.home, now=NOW).code == status.WARNING


def test_unknown_and_no_snapshot(tmp_path: Path) -> None:
    assert status.compute_status(tmp_path / "none").code == status.UNKNOWN
    fresh = make_rig(tmp_path / "fresh")
    report = status.compute_status(fresh.home, now=NOW)
    assert report.code == status.CRITICAL and report.to_json()["current"] is None
