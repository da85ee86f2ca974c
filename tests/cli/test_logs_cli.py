"""Log lines as a real process writes them: to journald's stream, to a terminal, to a pipe (cron mail)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from continuity import logs
from continuity.errors import Malformed, NotInitialized
from tests.transport_helpers import PASSPHRASE

CLI = [sys.executable, "-c", "from continuity.cli import main; main()"]


def run_cli(*args: object, stderr_to: int | None = None, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run `continuity ARGS` in a child process; returns (exit code, what it wrote to stderr when piped)."""
    full_env = {key: value for key, value in os.environ.items() if key != "JOURNAL_STREAM"}
    full_env.update({"CONTINUITY_TEST_WEAK_KDF": "1", **(env or {})})
    done = subprocess.run(
        [*CLI, *map(str, args)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr_to if stderr_to is not None else subprocess.PIPE,
        env=full_env,
        timeout=120,
    )
    return done.returncode, done.stderr.decode() if done.stderr is not None else ""


def journal_stream_of(path: Path) -> tuple[int, str]:
    """An fd on `path` and the JOURNAL_STREAM value systemd would set for it."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    info = os.fstat(descriptor)
    return descriptor, f"{info.st_dev}:{info.st_ino}"


def test_error_under_journald_is_one_english_line_with_its_priority(tmp_path: Path) -> None:
    captured = tmp_path / "journal"
    descriptor, stream = journal_stream_of(captured)
    try:
        code, _ = run_cli("trust", "--home", tmp_path / "none", __file__, stderr_to=descriptor,
                          env={"JOURNAL_STREAM": stream})  # fmt: skip
    finally:
        os.close(descriptor)
    assert code == NotInitialized.exit_code
    lines = captured.read_text().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("<3>continuity: NotInitialized: ")
    assert "Erreur" not in lines[0]
    assert not lines[0][3:5].isdigit()  # no timestamp of our own: journald records it


def test_error_on_a_terminal_is_the_french_sentence_only(tmp_path: Path) -> None:
    primary, secondary = os.openpty()
    try:
        code, _ = run_cli("trust", "--home", tmp_path / "none", __file__, stderr_to=secondary)
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(primary)
    text = b"".join(chunks).decode()
    assert code == NotInitialized.exit_code
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("Erreur : ")


def test_error_in_a_pipe_is_one_english_and_one_french_line(tmp_path: Path) -> None:
    code, err = run_cli("trust", "--home", tmp_path / "none", __file__)
    assert code == NotInitialized.exit_code
    lines = err.splitlines()
    assert len(lines) == 2, lines
    assert " ERROR continuity: NotInitialized: " in lines[0]
    assert lines[1].startswith("Erreur : ")


def test_watch_once_exits_with_the_refusal_code_and_logs_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    passphrase = tmp_path / "pass"
    passphrase.write_text(PASSPHRASE + "\n")
    assert run_cli("init", "--home", home, "--user", "alice", "--passphrase-file", passphrase)[0] == 0
    (home / "inbox").mkdir(exist_ok=True)
    (home / "inbox" / "latest.snap").write_bytes(b"not a snapshot at all" * 10)
    code, err = run_cli("watch", "--once", "--home", home)
    assert code == Malformed.exit_code, err
    assert "WARNING continuity.watch: inbox latest.snap: rejected (malformed)" in err
    assert run_cli("watch", "--once", "--home", home)[0] == 0  # nothing left in the inbox


def test_a_traceback_is_folded_into_one_line() -> None:
    formatter = logs.OneLineFormatter(journal=True)
    try:
        raise ValueError("first\nsecond")
    except ValueError:
        record = logging.getLogger("continuity.x").makeRecord(
            "continuity.x", logging.CRITICAL, __file__, 1, "boom", (), sys.exc_info()
        )
    line = formatter.format(record)
    assert "\n" not in line
    assert line.startswith("<2>continuity.x: boom | Traceback")
    assert "ValueError: first | second" in line


@pytest.mark.parametrize(("level", "prefix"), [(logging.INFO, "<6>"), (logging.WARNING, "<4>"), (logging.ERROR, "<3>")])
def test_priorities(level: int, prefix: str) -> None:
    record = logging.getLogger("continuity").makeRecord("continuity", level, __file__, 1, "m", (), None)
    assert logs.OneLineFormatter(journal=True).format(record) == f"{prefix}continuity: m"
