"""Store: home layout, atomic commits, retention, state rebuild, staging cleanup, unlock with fallback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from continuity import publish, snapshot_build, snapshotdb, store
from continuity.errors import (
    NoSnapshot,
    NotInitialized,
    PayloadCorrupt,
    Rollback,
    SnapshotDatabaseError,
    UnsupportedFormat,
    UntrustedSigner,
)
from continuity.store import Store, StoreConfig
from tests.transport_helpers import NOW, Rig, assert_untouched, flip_byte, make_rig, use_weak_kdf


@pytest.fixture(autouse=True)
def _weak_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    use_weak_kdf(monkeypatch)


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return make_rig(tmp_path)


def test_default_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CONTINUITY_HOME", str(tmp_path / "h"))
    assert store.default_home() == tmp_path / "h"
    monkeypatch.delenv("CONTINUITY_HOME")
    checkout = Path(store.__file__).resolve().parent.parent
    assert store.default_home() == checkout / "snapshots"


def test_ingest_requires_an_initialised_home(tmp_path: Path) -> None:
    with open(os.devnull, "rb") as empty, pytest.raises(NotInitialized):
        Store(tmp_path).ingest(empty)


def test_accept_then_open_latest(rig: Rig) -> None:
    assert rig.ingest(rig.make(1)) == "accepted"
    opened = rig.store.open_latest(rig.secrets)
    try:
        assert opened.header.sequence == 1
        assert opened.fell_back_from is None
        assert opened.db.counts() == rig.counts
        assert opened.db.search("Garnier") is not None
    finally:
        opened.close()
    state = rig.store.read_state()
    current = state["current"]
    assert current["file"] == f"{1:020d}.snap"
    assert current["publisher_fingerprint"] == opened.header.signer_fingerprint
    assert stat_mode(rig.home / "state.json") == 0o600


def test_a_snapshot_of_another_schema_is_refused_at_the_pull_and_the_current_one_stays(rig: Rig) -> None:
    # Stored, a snapshot this release cannot open would become current, fail at every unlock, and
    # after `keep` nights retention would have deleted every snapshot it can open.
    assert rig.ingest(rig.make(1)) == "accepted"
    before = rig.snapshot_state()
    newer = rig.make(2, schema_version=snapshotdb.SCHEMA_VERSION + 1)
    with pytest.raises(UnsupportedFormat) as refused:
        rig.ingest(newer)
    assert "update Continuity" in str(refused.value) and "mettez à jour" in refused.value.message_fr
    assert_untouched(rig, before)
    opened = rig.store.open_latest(rig.secrets)
    try:
        assert opened.header.sequence == 1 and opened.fell_back_from is None
    finally:
        opened.close()


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_open_latest_without_snapshot(rig: Rig) -> None:
    with pytest.raises(NoSnapshot):
        rig.store.open_latest(rig.secrets)


def test_open_latest_falls_back_when_the_newest_is_damaged_on_disk(rig: Rig) -> None:
    rig.ingest(rig.make(1))
    rig.ingest(rig.make(2))
    newest = rig.store.current_path()
    assert newest is not None
    newest.write_bytes(flip_byte(newest.read_bytes(), -30))  # disk rot after acceptance
    opened = rig.store.open_latest(rig.secrets)
    try:
        assert opened.header.sequence == 1
        assert opened.fell_back_from is not None and "PayloadCorrupt" in opened.fell_back_from
    finally:
        opened.close()


def test_open_latest_falls_back_when_the_database_is_refused(rig: Rig, tmp_path: Path) -> None:
    rig.ingest(rig.make(1))
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"SQLite format 3\x00" + bytes(4000))
    rig.ingest(rig.make(2, database=junk))
    opened = rig.store.open_latest(rig.secrets)
    try:
        assert opened.header.sequence == 1
        assert "SnapshotDatabaseError" in (opened.fell_back_from or "")
    finally:
        opened.close()


def test_counts_must_match_the_signed_header(rig: Rig) -> None:
    wrong = dict(rig.counts)
    wrong["patient"] = wrong.get("patient", 0) + 1
    rig.ingest(rig.make(1, counts=wrong))
    with pytest.raises(SnapshotDatabaseError):
        rig.store.open_latest(rig.secrets)


def test_database_of_another_practice_inside_a_signed_file(rig: Rig, tmp_path: Path) -> None:
    from tests.factories import small_practice

    other = tmp_path / "other.db"
    built = snapshot_build.build_from_records(small_practice(), other, practice_id="autre-cabinet")
    rig.ingest(rig.make(1, database=other, counts=built.counts))
    with pytest.raises(SnapshotDatabaseError, match="autre-cabinet"):
        rig.store.open_latest(rig.secrets)


def test_every_stored_file_failing_raises_the_newest_error(rig: Rig) -> None:
    rig.ingest(rig.make(1))
    for path in (rig.home / "trusted").iterdir():
        path.unlink()
    with pytest.raises(UntrustedSigner):
        rig.store.open_latest(rig.secrets)


def test_retention_is_configurable(rig: Rig) -> None:
    (rig.home / "config.json").write_text(json.dumps({"keep": 2}))
    for sequence in range(1, 5):
        rig.ingest(rig.make(sequence))
    assert [p.name for p in rig.store.snapshot_files()] == [f"{4:020d}.snap", f"{3:020d}.snap"]


def test_bad_config_is_a_store_error(rig: Rig) -> None:
    from continuity.errors import StoreError

    (rig.home / "config.json").write_text(json.dumps({"keep": "many"}))
    with pytest.raises(StoreError):
        StoreConfig.load(rig.home)


def test_state_is_rebuilt_from_the_newest_verified_file(rig: Rig) -> None:
    rig.ingest(rig.make(1))
    rig.ingest(rig.make(2))
    (rig.home / "state.json").write_text("{not json")
    state = rig.store.read_state()
    assert state["current"]["sequence"] == 2
    # the rebuilt state keeps anti-rollback working
    with pytest.raises(Rollback):
        rig.ingest(rig.make(1))


def test_state_rebuild_skips_a_file_that_no_longer_verifies(rig: Rig) -> None:
    rig.ingest(rig.make(1))
    rig.ingest(rig.make(2))
    (rig.home / "state.json").unlink()
    newest = rig.home / "store" / f"{2:020d}.snap"
    newest.write_bytes(newest.read_bytes()[:-5])
    assert rig.store.read_state()["current"]["sequence"] == 1


def test_stale_staging_from_a_dead_process_is_removed(rig: Rig) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = rig.home / "store" / f".staging-{dead.stdout.strip()}-abc"
    stale.write_bytes(b"half a file")
    rig.ingest(rig.make(1))
    assert not stale.exists()


def test_a_commit_interrupted_before_the_state_write_leaves_the_old_current(rig: Rig) -> None:
    rig.ingest(rig.make(1))
    before = rig.store.current_path()
    # simulate: the new file renamed into store/ but the process died before writing the state
    second = rig.make(2)
    (rig.home / "store" / f"{2:020d}.snap").write_bytes(second.read_bytes())
    assert rig.store.current_path() == before
    # the next pull accepts the same file again and makes it current
    assert rig.ingest(second) == "accepted"
    assert rig.store.read_state()["current"]["sequence"] == 2


def test_concurrent_commit_of_the_same_file_is_unchanged(rig: Rig) -> None:
    path = rig.make(1)
    results = {rig.ingest(path), rig.ingest(path)}
    assert results == {"accepted", "unchanged"}


def test_record_attempt_keeps_the_last_fifty(rig: Rig) -> None:
    for index in range(60):
        rig.store.record_attempt(source="s", outcome="rejected", reason="transport", detail=str(index), now=NOW)
    attempts = rig.store.read_state()["attempts"]
    assert len(attempts) == 50 and attempts[0]["detail"] == "59"


def test_payload_corrupt_on_disk_is_reported_when_no_fallback(rig: Rig) -> None:
    rig.ingest(rig.make(1))
    path = rig.store.current_path()
    assert path is not None
    path.write_bytes(flip_byte(path.read_bytes(), -3))
    with pytest.raises(PayloadCorrupt):
        rig.store.open_latest(rig.secrets)


# --- crash safety: SIGKILL at random points during the commit ---------------------------------------

_CHILD = """
import io, sys
from pathlib import Path
from continuity.store import Store
from tests.transport_helpers import NOW
store = Store(Path(sys.argv[1]))
data = Path(sys.argv[2]).read_bytes()
store.read_state()
sys.stdout.write("ready\\n"); sys.stdout.flush()
store.ingest(io.BytesIO(data), now=NOW)
"""


@pytest.mark.slow
def test_sigkill_during_commit_leaves_old_or_new_never_neither(rig: Rig, tmp_path: Path) -> None:
    import random
    import shutil
    import signal
    import time

    from continuity import synth

    synth.write_practice(tmp_path / "fhir", patients=1500, seed=3)
    big_db = tmp_path / "big.db"

    built = publish.build([tmp_path / "fhir"], big_db, practice_id="cabinet-lilas")
    rig.ingest(rig.make(1))
    new_file = rig.make(2, database=big_db, counts=built.counts)
    template = tmp_path / "template"
    shutil.copytree(rig.home, template)
    root = Path(__file__).resolve().parents[2]

    def start(home: Path) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(home), str(new_file)],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        return child

    # How long does the commit take, ready to exit? Kill points are drawn across that window.
    probe_home = tmp_path / "probe"
    shutil.copytree(template, probe_home)
    child = start(probe_home)
    began = time.monotonic()
    child.wait(30)
    window = max(time.monotonic() - began, 0.005)
    assert child.returncode == 0
    assert child.stdout is not None
    child.stdout.close()

    random_source = random.Random(20261128)
    seen: dict[int, int] = {1: 0, 2: 0}
    for trial in range(60):
        home = tmp_path / f"trial-{trial}"
        shutil.copytree(template, home)
        child = start(home)
        time.sleep(random_source.uniform(0, window * 1.3))
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        if child.stdout is not None:
            child.stdout.close()
        trial_store = Store(home)
        opened = trial_store.open_latest(rig.secrets)
        try:
            assert opened.header.sequence in (1, 2)
            assert opened.fell_back_from is None
            seen[opened.header.sequence] += 1
        finally:
            opened.close()
        # the next pull after the crash completes normally
        with new_file.open("rb") as handle:
            assert trial_store.ingest(handle, now=NOW).outcome in ("accepted", "unchanged")
        assert trial_store.read_state()["current"]["sequence"] == 2
        assert trial_store.staging_files() == []
        shutil.rmtree(home)
    assert seen[1] > 0 and seen[2] > 0, seen
