"""Status classification: ages, expiry, rejections, alarms that stay up until a good file arrives."""

from __future__ import annotations

import datetime as dt
import json
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
    made.ingest(made.make(1, expires_in=dt.timedelta(hours=48)))  # expires at NOW + 47 h
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


# --- issue #12 item 5 and #13: a status that never lies and never writes ------------------------------


def tree(home: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every path under the home with its mode, mtime and content: what `status` must leave as it is."""
    found = {}
    for path in sorted(home.rglob("*")):
        info = path.lstat()
        content = path.read_bytes() if path.is_file() else b""
        found[str(path.relative_to(home))] = (info.st_mode, info.st_mtime_ns, content)
    return found


def test_snapshot_from_the_future_is_critical(rig: Rig) -> None:
    # The appliance clock was set back two days: the current snapshot seems to come from the future.
    report = status.compute_status(rig.home, now=NOW - dt.timedelta(days=2))
    assert report.code == status.CRITICAL
    assert "clock" in report.problems[0] and "ahead" in report.problems[0]
    # within the allowed skew (1 h by default) it is only a small negative age, not an alarm
    assert status.compute_status(rig.home, now=NOW - dt.timedelta(minutes=90)).code == status.OK


def test_a_corrupt_state_file_is_reported_and_keeps_the_alarm(rig: Rig) -> None:
    rig.store.record_attempt(source="s", outcome="rejected", reason="untrusted_signer", detail="key X", now=NOW)
    assert status.compute_status(rig.home, now=NOW).code == status.CRITICAL
    (rig.home / "state.json").write_text('{"version": 1, "attempts": [')  # torn write, disk rot
    before = tree(rig.home)
    report = status.compute_status(rig.home, now=NOW)
    assert report.code == status.CRITICAL
    assert any("untrusted_signer" in p for p in report.problems)
    assert any("state.json was rebuilt" in p and "not valid JSON" in p for p in report.problems)
    assert report.current is not None and report.current["sequence"] == 1
    assert tree(rig.home) == before  # status reads; it never rewrites the state


def test_an_oversized_state_file_is_reported_and_keeps_the_alarm(rig: Rig) -> None:
    rig.store.record_attempt(source="s", outcome="rejected", reason="equivocation", detail="two files", now=NOW)
    state = json.loads((rig.home / "state.json").read_text())
    state["padding"] = "x" * (2 << 20)
    (rig.home / "state.json").write_text(json.dumps(state))
    report = status.compute_status(rig.home, now=NOW)
    assert report.code == status.CRITICAL
    assert any("equivocation" in p for p in report.problems)
    assert any("larger than" in p for p in report.problems)
    # the next writer stores the rebuilt state, and the note stays until a snapshot is accepted
    rig.store.record_attempt(source="s", outcome="unchanged", now=NOW)
    assert (rig.home / "state.json").stat().st_size < 64 * 1024
    assert any("rebuilt" in p for p in status.compute_status(rig.home, now=NOW).problems)
    rig.ingest(rig.make(2))
    cleared = status.compute_status(rig.home, now=NOW)
    assert cleared.code == status.OK, cleared.problems


def test_a_state_file_of_the_wrong_shape_is_not_a_crash(rig: Rig) -> None:
    (rig.home / "state.json").write_text(json.dumps({"version": 1, "current": None, "attempts": 5}))
    report = status.compute_status(rig.home, now=NOW)
    assert report.code == status.WARNING
    assert "damaged attempts" in report.problems[0]


def test_status_reads_a_missing_state_without_writing_it(rig: Rig) -> None:
    (rig.home / "state.json").unlink()
    before = tree(rig.home)
    report = status.compute_status(rig.home, now=NOW)
    assert report.current is not None and report.current["sequence"] == 1
    assert any("missing" in p for p in report.problems) and report.code == status.WARNING
    assert tree(rig.home) == before


def test_low_free_space_warns(rig: Rig) -> None:
    report = status.compute_status(rig.home, now=NOW, min_free=1 << 62)
    assert report.code == status.WARNING
    assert "free" in report.problems[0]
    assert " free=" in report.headline() and report.free_bytes is not None
    assert status.compute_status(rig.home, now=NOW, min_free=0).code == status.OK


def test_outside_strings_are_escaped_on_one_line(rig: Rig) -> None:
    hostile = "Not Found\nCONTINUITY OK - all good\x1b[2J\u202e"
    rig.store.record_attempt(source="https://x/\x1b]0;t\x07", outcome="rejected", reason="transport",
                             detail=f"server answered 404 {hostile}", now=NOW)  # fmt: skip
    report = status.compute_status(rig.home, now=NOW)
    for line in report.lines():
        assert "\n" not in line and "\x1b" not in line and "\u202e" not in line and "\x07" not in line
    assert "\\x1b[2J" in report.headline()
    stored = json.loads((rig.home / "state.json").read_text())["attempts"][0]
    assert "\x1b" not in stored["detail"] and "\n" not in stored["detail"]


def test_an_unreadable_home_is_unknown(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(status.Store, "read_state", refuse)  # the real case runs as another user in test_transport_cli
    report = status.compute_status(rig.home, now=NOW)
    assert report.code == status.UNKNOWN
    assert report.headline().startswith("CONTINUITY UNKNOWN - status unknown - cannot read")


def test_a_damaged_alarm_record_is_itself_an_alarm(rig: Rig) -> None:
    (rig.home / "alarm.json").write_bytes(b"\x00" * 40)
    report = status.compute_status(rig.home, now=NOW)
    assert report.code == status.CRITICAL and "alarm_unreadable" in report.problems[0]
    rig.ingest(rig.make(2))  # a good snapshot clears it, as it clears any alarm
    assert status.compute_status(rig.home, now=NOW).code == status.OK
