"""The growing wait after wrong passphrases, shared by every way in (interface, command line), kept in the home.

A script that runs `continuity search --user …` in a loop starts a new process each time: a delay
kept in memory would never grow. So the count of failures since the last success, and the time the
next try is allowed, live in `HOME/unlock-throttle.json` (no secret, no patient data). The schedule is
the interface's: five free tries, then 2, 4, 8… seconds, at most 60.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from continuity import files

log = logging.getLogger(__name__)

STATE_FILE = "unlock-throttle.json"
FREE_TRIES = 5
MAX_DELAY_SECONDS = 60


def delay_after(failures: int) -> int:
    """Seconds to wait before the next try: none for the first 5 failures, then 2, 4, 8... up to 60."""
    if failures < FREE_TRIES:
        return 0
    return int(min(MAX_DELAY_SECONDS, 2 ** (failures - FREE_TRIES + 1)))


@contextlib.contextmanager
def _locked(home: Path) -> Iterator[None]:
    fd = os.open(home / f".{STATE_FILE}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _read(home: Path) -> tuple[int, float]:
    try:
        value = json.loads((home / STATE_FILE).read_bytes()[:1024])
        failures, retry_at = int(value["failures"]), float(value["retry_at"])
    except FileNotFoundError:
        return 0, 0.0
    except (OSError, ValueError, KeyError, TypeError) as error:
        # Damaged or edited: assume the worst rather than a clean slate.
        log.warning("%s unreadable (%s): counted as many failures", home / STATE_FILE, error)
        return FREE_TRIES + 5, 0.0
    return max(0, failures), retry_at


def _write(home: Path, failures: int, retry_at: float) -> None:
    data = json.dumps({"failures": failures, "retry_at": retry_at}).encode() + b"\n"
    try:
        files.write_atomic(home / STATE_FILE, data, 0o600)
    except OSError as error:
        log.warning("cannot record the unlock delay in %s: %s", home, error)


def failures(home: Path) -> int:
    return _read(home)[0]


def remaining(home: Path, *, clock: Callable[[], float] = time.time) -> float:
    """Seconds before the next try is allowed (0 when it is)."""
    return max(0.0, _read(home)[1] - clock())


def wait_turn(
    home: Path,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    announce: Callable[[int, float], None] | None = None,
) -> float:
    """Wait until the next try is allowed; returns the seconds waited. `announce(failures, seconds)` is
    called first when there is a wait, so the person knows why nothing happens."""
    count, retry_at = _read(home)
    wait = retry_at - clock()
    if wait <= 0:
        return 0.0
    wait = min(wait, MAX_DELAY_SECONDS)  # a clock set back must not lock people out for hours
    if announce is not None:
        announce(count, wait)
    sleep(wait)
    return wait


def record_failure(home: Path, *, clock: Callable[[], float] = time.time) -> int:
    """One more wrong passphrase; returns the seconds the next try must wait."""
    if not home.is_dir():
        return 0
    with _locked(home):
        count, _ = _read(home)
        count += 1
        delay = delay_after(count)
        _write(home, count, clock() + delay)
    return delay


def record_success(home: Path) -> None:
    if not (home / STATE_FILE).exists():
        return
    with _locked(home):
        _write(home, 0, 0.0)
