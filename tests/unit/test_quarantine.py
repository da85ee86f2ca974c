"""A broken export never replaces good data (issue #10, appliance side): quarantine, accept, retention pin.

The publisher may be wrong or compromised: the appliance checks on its own that a new snapshot did not
lose patients. Snapshots go through a real HTTP server on loopback, as the nightly pull gets them.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from continuity import snapshot_build, snapshotdb, status
from continuity.cli import cli
from continuity.errors import Equivocation, Quarantined
from continuity.journal import Journal
from continuity.model import Patient
from continuity.pull import Puller, PullOptions
from tests.factories import small_practice
from tests.transport_helpers import (
    NOW,
    PASSPHRASE,
    PRACTICE,
    Rig,
    SnapshotServer,
    isolate_network_environment,
    make_rig,
    serving,
    use_weak_kdf,
)

SEQ = "{:020d}.snap".format


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    use_weak_kdf(monkeypatch)
    isolate_network_environment(monkeypatch, tmp_path / "user-home")


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    made = make_rig(tmp_path)
    assert made.counts["patient"] == 11
    assert made.ingest(made.make(1)) == "accepted"
    return made


@pytest.fixture
def server() -> object:
    with serving() as running:
        yield running


def database_with(rig: Rig, patients: int) -> tuple[Path, dict[str, int]]:
    """The practice's database truncated to its first `patients` patients (what a cut export gives)."""
    records = small_practice()
    kept = {r.id for r in records if isinstance(r, Patient)}
    kept = set(sorted(kept)[:patients])
    chosen = [
        r
        for r in records
        if (not isinstance(r, Patient) or r.id in kept) and getattr(r, "patient_id", None) in (None, *kept)
    ]
    out = rig.tmp / f"practice-{patients}.db"
    if not out.exists():
        built = snapshot_build.build_from_records(chosen, out, practice_id=PRACTICE)
        assert built.counts["patient"] == patients
    opened = snapshotdb.open_file(out)
    try:
        return out, opened.counts()
    finally:
        opened.close()


def publish(rig: Rig, server: SnapshotServer, sequence: int, patients: int, night: dt.datetime) -> Path:
    database, counts = (rig.database, rig.counts) if patients == 11 else database_with(rig, patients)
    created = night - dt.timedelta(hours=1) + dt.timedelta(seconds=sequence)
    snap = rig.make(sequence, database=database, counts=counts, created_at=created)
    server.files["/latest.snap"] = snap.read_bytes()
    return snap


def pull(rig: Rig, server: SnapshotServer, night: dt.datetime) -> str:
    return Puller(rig.store, PullOptions(retries=0)).pull(server.url("/latest.snap"), now=night).outcome


def current_sequence(rig: Rig) -> int:
    return int(rig.store.read_state()["current"]["sequence"])


def opened_patients(rig: Rig) -> int:
    opened = rig.store.open_latest(rig.secrets)
    try:
        return opened.db.counts()["patient"]
    finally:
        opened.close()


def test_a_shrunk_snapshot_is_quarantined_and_the_current_stays(rig: Rig, server: SnapshotServer) -> None:
    # Before: the 5-patient snapshot became current, and the 11-patient one was later deleted by retention.
    shrunk = publish(rig, server, 2, 5, NOW)
    assert pull(rig, server, NOW) == "quarantined"
    assert current_sequence(rig) == 1 and opened_patients(rig) == 11
    assert (rig.home / "quarantine" / SEQ(2)).is_file()
    assert (rig.home / "store" / (SEQ(1) + ".keep")).exists()  # pinned against retention
    attempt = rig.store.read_state()["attempts"][0]
    assert attempt["outcome"] == "quarantined" and "5 patients against 11" in attempt["detail"]
    assert [e.action for e in Journal(rig.home).entries()][-1] == "pull_quarantined"
    report = status.compute_status(rig.home, now=NOW)
    assert report.code == status.WARNING
    assert "snapshot #2 quarantined: 5 patients against 11" in report.problems[0]
    assert "continuity accept 2" in report.problems[0]
    assert report.quarantined == [
        {"sequence": 2, "created_at": "2026-11-28T05:00:02Z", "patients": 5, "current_patients": 11}
    ]
    # the same file again (from the server, or a USB copy of it): nothing new, journaled once
    assert pull(rig, server, NOW) == "unchanged"  # the server's ETag: a 304
    assert Puller(rig.store).pull(str(shrunk), now=NOW).outcome == "quarantined"
    assert [e.action for e in Journal(rig.home).entries()].count("pull_quarantined") == 1
    # another file claiming the quarantined sequence is an equivocation, as for a current one
    rig.make(2, database=database_with(rig, 4)[0], counts=database_with(rig, 4)[1], name="other.snap")
    server.files["/latest.snap"] = (rig.tmp / "other.snap").read_bytes()
    with pytest.raises(Equivocation):
        pull(rig, server, NOW)


def test_a_snapshot_without_patients_is_never_made_current(tmp_path: Path, server: SnapshotServer) -> None:
    fresh = make_rig(tmp_path)  # even as the very first snapshot of an appliance
    publish(fresh, server, 1, 0, NOW)
    assert pull(fresh, server, NOW) == "quarantined"
    assert fresh.store.read_state()["current"] is None
    report = status.compute_status(fresh.home, now=NOW)
    assert report.code == status.CRITICAL  # no snapshot at all
    assert any("0 patients" in p and "never usable" in p for p in report.problems)
    with pytest.raises(Quarantined, match="no patient"):
        fresh.store.accept_quarantined(1, by="alice", now=NOW)
    assert fresh.store.read_state()["current"] is None


def test_the_share_is_configurable(rig: Rig, server: SnapshotServer) -> None:
    (rig.home / "config.json").write_text(json.dumps({"min_patient_percent": 40}))
    publish(rig, server, 2, 5, NOW)  # 45 % of 11: enough for this practice
    assert pull(rig, server, NOW) == "accepted"
    publish(rig, server, 3, 1, NOW)  # 20 % of 5
    assert pull(rig, server, NOW) == "quarantined"


def test_seven_nights_of_broken_exports(rig: Rig, server: SnapshotServer) -> None:
    # The export breaks for a week: every night a verified, signed, smaller snapshot (sometimes empty).
    sizes = [4, 0, 5, 3, 0, 6, 2]
    for night_number, patients in enumerate(sizes, start=1):
        night = NOW + dt.timedelta(days=night_number)
        publish(rig, server, 1 + night_number, patients, night)
        assert pull(rig, server, night) == "quarantined", night_number
        assert current_sequence(rig) == 1
        assert [p.name for p in rig.store.snapshot_files()] == [SEQ(1)]
        waiting = [p.name for p in rig.store.quarantined_files()]
        assert waiting == [SEQ(s) for s in range(1 + night_number, max(1, night_number - 2), -1)]  # the last 3
        # WARNING from the first night (a person must look), CRITICAL once the data in use is a week old.
        report = status.compute_status(rig.home, now=night)
        assert report.code == (status.CRITICAL if night_number == 7 else status.WARNING), report.problems
        assert any(f"snapshot #{1 + night_number} quarantined: {patients} patients against 11" in p
                   for p in report.problems)  # fmt: skip
    assert opened_patients(rig) == 11  # the practice still has all its patients on the eighth day
    # The publisher fixes its export: the next full snapshot is accepted and the quarantine is over.
    night = NOW + dt.timedelta(days=8)
    publish(rig, server, 9, 11, night)
    assert pull(rig, server, night) == "accepted"
    assert rig.store.quarantined_files() == [] and rig.store.pinned_files() == []
    assert status.compute_status(rig.home, now=night).code == status.OK


def test_accepted_by_an_operator_then_retention_keeps_the_last_good_snapshot(rig: Rig, server: SnapshotServer) -> None:
    publish(rig, server, 2, 5, NOW)
    assert pull(rig, server, NOW) == "quarantined"
    header = rig.store.accept_quarantined(2, by="alice", now=NOW)
    assert header.sequence == 2 and current_sequence(rig) == 2
    assert rig.store.read_state()["current"]["accepted_by"] == "alice"
    assert rig.store.quarantined_files() == []
    # A week of 5-patient snapshots: normal compared to the accepted one, so accepted; retention keeps 7
    # files, but never the last snapshot that was current before the quarantine.
    for night_number in range(1, 9):
        night = NOW + dt.timedelta(days=night_number)
        publish(rig, server, 2 + night_number, 5, night)
        assert pull(rig, server, night) == "accepted"
    names = [p.name for p in rig.store.snapshot_files()]
    assert SEQ(1) in names and len(names) == 8
    assert [p.name for p in rig.store.pinned_files()] == [SEQ(1)]
    # Back to full size: the pin is released and retention applies normally again.
    night = NOW + dt.timedelta(days=9)
    publish(rig, server, 11, 11, night)
    assert pull(rig, server, night) == "accepted"
    assert SEQ(1) not in [p.name for p in rig.store.snapshot_files()] and rig.store.pinned_files() == []


def test_a_lost_state_never_makes_a_quarantined_snapshot_current(rig: Rig, server: SnapshotServer) -> None:
    publish(rig, server, 2, 3, NOW)
    assert pull(rig, server, NOW) == "quarantined"
    (rig.home / "state.json").unlink()
    assert current_sequence(rig) == 1
    report = status.compute_status(rig.home, now=NOW)
    assert any("quarantined" in p for p in report.problems)


# --- the operator's command -------------------------------------------------------------------------


def run(*args: object, code: int = 0) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_accept_command(rig: Rig, server: SnapshotServer, tmp_path: Path) -> None:
    publish(rig, server, 2, 5, NOW)
    url = server.url("/latest.snap")
    fresh = dt.datetime.now(dt.UTC).replace(microsecond=0)
    publish(rig, server, 2, 5, fresh)  # the command line pulls at the real time
    output = run("pull", "--home", rig.home, url, code=Quarantined.exit_code)
    assert "beaucoup moins de patients" in output
    passphrase = tmp_path / "pass"
    passphrase.write_text(PASSPHRASE + "\n")
    wrong = tmp_path / "wrong"
    wrong.write_text("pas la bonne phrase du tout\n")
    run("accept", "--home", rig.home, "2", "--user", "alice", "--passphrase-file", wrong, code=7)
    assert current_sequence(rig) == 1
    assert "snapshot_accepted" not in [e.action for e in Journal(rig.home).entries()]
    run("accept", "--home", rig.home, "3", "--user", "alice", "--passphrase-file", passphrase, code=5)
    output = run("accept", "--home", rig.home, "2", "--user", "alice", "--passphrase-file", passphrase)
    assert "snapshot 2 is now in use (5 patients); accepted by alice" in output
    assert current_sequence(rig) == 2
    accepted = [e for e in Journal(rig.home).entries() if e.action == "snapshot_accepted"]
    assert len(accepted) == 1 and accepted[0].user == "alice" and accepted[0].snapshot_seq == 2
    assert accepted[0].details == {
        "patient_count": 5,
        "role": "reception",
        "previous_sequence": 1,
        "previous_patient_count": 11,
    }
    failed = [e for e in Journal(rig.home).entries() if e.action == "unlock_failed"]
    assert [e.details["command"] for e in failed] == ["accept"]
    text = run("status", "--home", rig.home)
    assert text.startswith("CONTINUITY OK") and "accepted from quarantine by alice" in text


def test_a_waiting_snapshot_that_fits_after_an_accept_is_taken_when_it_comes_again(
    rig: Rig, server: SnapshotServer
) -> None:
    publish(rig, server, 2, 5, NOW)
    assert pull(rig, server, NOW) == "quarantined"
    later = publish(rig, server, 3, 5, NOW)
    assert pull(rig, server, NOW) == "quarantined"
    rig.store.accept_quarantined(2, by="alice", now=NOW)  # the operator took the older one
    assert Puller(rig.store).pull(str(later), now=NOW).outcome == "accepted"  # 5 of 5: not a shrink any more
    assert current_sequence(rig) == 3 and rig.store.quarantined_files() == []
