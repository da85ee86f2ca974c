"""The inbox watcher with real inotify (watchdog): complete files only, refusals, survival after bad files.

Files that are still being written must not be refused for good: a writer that closes midway, a
writer inotify cannot see (another machine writing through a share, imitated here by a hard link
written through another directory), and a scan racing a copy.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from continuity.watch import InboxWatcher
from tests.transport_helpers import Rig, assert_untouched, make_rig, use_weak_kdf


@pytest.fixture(autouse=True)
def _weak_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    use_weak_kdf(monkeypatch)


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return make_rig(tmp_path)


@pytest.fixture
def watcher(rig: Rig) -> Iterator[InboxWatcher]:
    running = InboxWatcher(rig.store, settle_seconds=0.2, retry_seconds=0.8)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def current_sequence(rig: Rig) -> int | None:
    current = rig.store.read_state().get("current")
    return int(current["sequence"]) if isinstance(current, dict) else None


def test_file_already_there_at_start_is_imported(rig: Rig) -> None:
    (rig.home / "inbox" / "nightly.snap").write_bytes(rig.make(1).read_bytes())
    outcomes = InboxWatcher(rig.store).scan()
    assert [(o.name, o.outcome) for o in outcomes] == [("nightly.snap", "accepted")]
    assert current_sequence(rig) == 1
    assert list((rig.home / "inbox").iterdir()) == []


def test_copied_file_is_imported_when_closed(rig: Rig, watcher: InboxWatcher) -> None:
    (rig.home / "inbox" / "a.snap").write_bytes(rig.make(1).read_bytes())
    assert wait_for(lambda: current_sequence(rig) == 1)
    assert wait_for(lambda: not (rig.home / "inbox" / "a.snap").exists())


def test_half_written_file_waits_for_its_writer(rig: Rig, watcher: InboxWatcher) -> None:
    data = rig.make(1).read_bytes()
    target = rig.home / "inbox" / "slow.snap"
    with target.open("wb") as handle:
        handle.write(data[: len(data) // 2])
        handle.flush()
        os.fsync(handle.fileno())
        time.sleep(0.6)
        assert current_sequence(rig) is None
        assert rig.store.read_state()["attempts"] == []
        assert target.exists()
        handle.write(data[len(data) // 2 :])
    assert wait_for(lambda: current_sequence(rig) == 1)


def test_temporary_name_then_rename(rig: Rig, watcher: InboxWatcher) -> None:
    partial = rig.home / "inbox" / "b.snap.part"
    partial.write_bytes(rig.make(1).read_bytes())
    time.sleep(0.3)
    assert current_sequence(rig) is None and partial.exists()
    partial.rename(rig.home / "inbox" / "b.snap")
    assert wait_for(lambda: current_sequence(rig) == 1)


def test_symlink_is_refused_and_removed(rig: Rig, watcher: InboxWatcher) -> None:
    before = rig.snapshot_state()
    link = rig.home / "inbox" / "link.snap"
    link.symlink_to(rig.make(1))
    assert wait_for(lambda: any(o.name == "link.snap" for o in watcher.outcomes))
    assert [o.reason for o in watcher.outcomes] == ["transport"]
    assert not os.path.lexists(link)
    assert_untouched(rig, before)
    assert rig.store.read_state()["attempts"][0]["detail"].endswith("symbolic link, refused")


def test_fifo_is_refused(rig: Rig, watcher: InboxWatcher) -> None:
    os.mkfifo(rig.home / "inbox" / "pipe.snap")
    assert wait_for(lambda: any(o.name == "pipe.snap" for o in watcher.outcomes))
    assert watcher.outcomes[0].outcome == "rejected"
    assert not os.path.lexists(rig.home / "inbox" / "pipe.snap")


def test_oversized_file_is_refused_without_reading(rig: Rig) -> None:
    (rig.home / "config.json").write_text(json.dumps({"max_file_size": 100}))
    (rig.home / "inbox" / "big.snap").write_bytes(rig.make(1).read_bytes())
    before = rig.snapshot_state()
    outcomes = InboxWatcher(rig.store).scan()
    assert [(o.outcome, o.reason) for o in outcomes] == [("rejected", "too_large")]
    assert_untouched(rig, before)


def test_survives_bad_files_and_keeps_them_aside_after_one_more_try(rig: Rig, watcher: InboxWatcher) -> None:
    inbox = rig.home / "inbox"
    (inbox / "garbage.snap").write_bytes(b"not a snapshot at all")
    good = rig.make(1).read_bytes()
    (inbox / "cut.snap").write_bytes(good[: len(good) - 10])
    assert wait_for(lambda: len(watcher.outcomes) == 4)
    tries = sorted((o.name, o.reason or "", o.deferred) for o in watcher.outcomes)
    assert tries == [
        ("cut.snap", "truncated", False),
        ("cut.snap", "truncated", True),
        ("garbage.snap", "malformed", False),
        ("garbage.snap", "malformed", True),
    ]
    assert current_sequence(rig) is None
    assert wait_for(lambda: (inbox / "rejected").is_dir() and len(list((inbox / "rejected").iterdir())) == 2)
    assert rig.store.staging_files() == []
    (inbox / "good.snap").write_bytes(good)
    assert wait_for(lambda: current_sequence(rig) == 1)


def test_rejected_files_kept_are_capped(rig: Rig) -> None:
    inbox = rig.home / "inbox"
    watcher = InboxWatcher(rig.store, keep_rejected=2)
    for index in range(4):
        (inbox / f"bad{index}.snap").write_bytes(b"junk" * (index + 1))
        watcher.scan()
    assert len(list((inbox / "rejected").iterdir())) == 2


def test_writer_that_closes_midway_is_not_refused(rig: Rig, watcher: InboxWatcher) -> None:
    # A copy tool that writes in several sessions (open, write, close, reopen to append): its first close
    # is not the end of the file. Before: imported at that close, refused as truncated, moved aside,
    # and the completed file was never looked at again.
    data = rig.make(1).read_bytes()
    target = rig.home / "inbox" / "twice.snap"
    with target.open("wb") as handle:
        handle.write(data[: len(data) // 2])
    time.sleep(0.8)  # long enough for the watcher to look at the half file
    with target.open("ab") as handle:
        handle.write(data[len(data) // 2 :])
    assert wait_for(lambda: current_sequence(rig) == 1)
    assert wait_for(lambda: len(watcher.outcomes) == 2)
    assert [(o.outcome, o.deferred) for o in watcher.outcomes] == [("rejected", True), ("accepted", False)]
    assert not (rig.home / "inbox" / "rejected").exists()


def test_writer_inotify_cannot_see_is_found_by_the_rescan_and_retried(rig: Rig, tmp_path: Path) -> None:
    # A writer on another machine of a network share produces no inotify event here. A hard link written
    # through another directory behaves the same way for the inbox's watch: only the rescan sees it.
    outside = tmp_path / "share"
    outside.mkdir()
    data = rig.make(1).read_bytes()
    remote = outside / "nightly.snap"
    remote.write_bytes(data[:100])
    watcher = InboxWatcher(rig.store, settle_seconds=0.2, retry_seconds=30, rescan_seconds=0.3)
    watcher.start()
    try:
        os.link(remote, rig.home / "inbox" / "nightly.snap")
        assert wait_for(lambda: any(o.deferred for o in watcher.outcomes))
        assert (rig.home / "inbox" / "nightly.snap").exists()  # kept for the next try, not moved aside
        with remote.open("ab") as handle:  # the remote copy goes on, silently
            handle.write(data[100:])
        assert wait_for(lambda: current_sequence(rig) == 1)
        assert wait_for(lambda: len(watcher.outcomes) == 2)
    finally:
        watcher.stop()
    assert [o.outcome for o in watcher.outcomes] == ["rejected", "accepted"]
    assert not (rig.home / "inbox" / "rejected").exists()


def test_scan_with_settle_leaves_a_file_still_growing(rig: Rig) -> None:
    data = rig.make(1).read_bytes()
    target = rig.home / "inbox" / "usb.snap"
    target.write_bytes(data[:200])

    def finish_copy() -> None:
        time.sleep(0.1)
        with target.open("ab") as handle:
            handle.write(data[200:])

    writer = threading.Thread(target=finish_copy)
    writer.start()
    once = InboxWatcher(rig.store, settle_seconds=0.4)
    assert once.scan(settle=True) == []  # it changed while looked at: left for the next run
    writer.join()
    assert target.exists() and rig.store.read_state()["attempts"] == []
    assert [o.outcome for o in once.scan(settle=True)] == ["accepted"]


def test_hostile_file_name_is_escaped_in_status_and_logs(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    from continuity import status

    rig.ingest(rig.make(1))
    name = "x\nCONTINUITY OK - tout va bien \x1b[2J\x1b]0;pwned\x07\u202egnp.snap"
    (rig.home / "inbox" / name).write_bytes(b"junk")
    with caplog.at_level(logging.INFO):
        outcomes = InboxWatcher(rig.store).scan()
    assert [o.outcome for o in outcomes] == ["rejected"]
    report = status.compute_status(rig.home)
    text = "\n".join(report.lines())
    assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    assert len(text.splitlines()) == len(report.lines())  # no line forged by the name
    assert "\\x1b[2J" in text and "\\u202e" in text  # shown, escaped
    assert not [r for r in caplog.records if "\x1b" in r.getMessage() or "\n" in r.getMessage()]
