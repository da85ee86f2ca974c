"""Disk full: the journal's reserve, on a real small file system (tmpfs mounted for the test).

The issue's finding first: with the home's disk full, the journal cannot be written and records are
not shown — right to fail closed, but during an outage it leaves the practice with nothing. With the
reserve, the next journal write gets the reserve's space, care goes on, and `status` is CRITICAL.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from continuity import journal, status
from continuity.errors import JournalError
from continuity.session import Session
from tests.transport_helpers import NOW, PASSPHRASE, USER, make_rig, use_weak_kdf

MIB = 1024 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MiB tmpfs: a real file system that really fills up (ENOSPC from the kernel)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root (the tests run as root in CI)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): no small file system to fill")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(directory: Path) -> Path:
    """Write (unbuffered) until the kernel says the disk is full, down to the last small block."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (65536, 4096, 512):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size) == size:
                    pass
    finally:
        os.close(fd)
    return filler


def test_the_reserve_keeps_care_going_on_a_full_disk(small_disk: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_weak_kdf(monkeypatch)
    monkeypatch.setattr(journal, "RESERVE_BYTES", 1 * MIB)
    monkeypatch.setattr(journal, "RESERVE_MARGIN", 1 * MIB)
    rig = make_rig(small_disk)
    rig.ingest(rig.make(1))

    # 1. Without a reserve: once the disk is full (the last block's slack used up), nothing can be shown.
    session = Session.unlock(rig.home, USER, PASSPHRASE)
    (rig.home / journal.RESERVE_FILE).unlink()
    filler = fill(small_disk)
    shown = 0
    failure: JournalError | None = None
    for _ in range(200):
        try:
            session.open_patient("pat-qual")
        except JournalError as error:
            failure = error
            break
        shown += 1
    assert failure is not None and "disque est plein" in failure.message_fr
    session.lock()
    filler.unlink()

    # 2. With the reserve (made at unlock while there is room): the disk fills, care goes on.
    session = Session.unlock(rig.home, USER, PASSPHRASE)
    assert (rig.home / journal.RESERVE_FILE).stat().st_blocks * 512 >= 1 * MIB  # real blocks, not sparse
    filler = fill(small_disk)
    probe = os.open(small_disk / "probe", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(OSError, match="No space left") as full:
            os.write(probe, b"x" * 65536)
    finally:
        os.close(probe)
    assert full.value.errno == errno.ENOSPC
    (small_disk / "probe").unlink()
    for _ in range(shown + 200):  # well past where the journal failed without the reserve
        assert session.open_patient("pat-qual").summary.patient.id == "pat-qual"
    assert not (rig.home / journal.RESERVE_FILE).exists()  # its space went to the journal
    report = status.compute_status(rig.home, now=NOW)
    assert report.code == status.CRITICAL
    assert any("réserve du journal" in problem for problem in report.problems)
    session.lock()
    after_fill = [e for e in journal.Journal(rig.home).entries() if e.action == "view_patient"]
    assert len(after_fill) == shown + shown + 200  # every access journaled, before and after
    assert journal.verify_journal(rig.home).ok

    # 3. Space freed: the next unlock makes the reserve again and the alarm ends.
    filler.unlink()
    Session.unlock(rig.home, USER, PASSPHRASE).lock()
    assert (rig.home / journal.RESERVE_FILE).exists()
    assert journal.reserve_problem(rig.home) is None


def test_the_reserve_is_not_made_on_a_nearly_full_disk(small_disk: Path) -> None:
    fill(small_disk)
    assert journal.ensure_reserve(small_disk, size=1 * MIB, margin=1 * MIB) is False
    assert not (small_disk / journal.RESERVE_FILE).exists()
