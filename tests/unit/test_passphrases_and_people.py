"""Passphrases and people (issue 13): strength, the growing delay, journaled searches, non-dumpable."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from continuity import keys, staff, throttle
from continuity.cli import cli
from continuity.errors import AuthenticationError, StaffError
from continuity.journal import Journal
from continuity.session import MAX_SEARCH_RESULTS, Session
from tests.transport_helpers import PASSPHRASE, USER, Rig, make_rig, use_weak_kdf


@pytest.fixture(autouse=True)
def _weak_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    use_weak_kdf(monkeypatch)
    monkeypatch.delenv("CONTINUITY_HOME", raising=False)


# --- strength --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "passphrase", "why"),
    [
        ("secretaire", "aaaaaaaaaaaa", "répétitions"),  # the two of the issue
        ("secretaire", "accueil12345", "mot lié au cabinet"),
        ("accueil", "accueil12345", "votre nom"),
        ("dr.garnier", "Garnier docteur 2024", "votre nom"),  # case, accents and dots do not hide it
        ("dr.garnier", "GARNÏER lampe girafe", "votre nom"),
        ("secretaire", "azertyuiop123", "facile à deviner"),
        ("secretaire", "abcdefghijklmnop", "suites"),
    ],
)
def test_weak_passphrases_are_refused_in_french(tmp_path: Path, user: str, passphrase: str, why: str) -> None:
    with pytest.raises(StaffError) as refused:
        staff.initialise(tmp_path / "home", user, passphrase)
    assert why in refused.value.message_fr
    assert not (tmp_path / "home" / keys.APPLIANCE_PUB).exists()


def test_staff_add_refuses_a_weak_passphrase_too(tmp_path: Path) -> None:
    home = tmp_path / "home"
    staff.initialise(home, "dr.martin", "ordonnance urgente bleue", role="prescriber", rpps="10101010105")
    doctor = keys.open_member(home, "dr.martin", "ordonnance urgente bleue")
    with pytest.raises(StaffError, match="too easy to guess"):
        staff.add(home, doctor, "accueil2", "aaaaaaaaaaaa")
    staff.add(home, doctor, "accueil2", "lampe girafe tambour")


def test_init_on_the_command_line_explains_the_refusal(tmp_path: Path) -> None:
    weak = tmp_path / "weak.pass"
    weak.write_text("accueil12345\n")
    result = CliRunner().invoke(cli, ["init", "--home", str(tmp_path / "h"), "--user", "accueil",
                                      "--passphrase-file", str(weak)])  # fmt: skip
    assert result.exit_code == StaffError.exit_code
    assert "votre nom d'utilisateur" in result.stderr


# --- the growing delay, kept in the home ------------------------------------------------------------


def test_the_delay_schedule_is_the_interfaces() -> None:
    assert [throttle.delay_after(n) for n in range(1, 12)] == [0, 0, 0, 0, 2, 4, 8, 16, 32, 60, 60]


def test_the_delay_grows_across_processes_and_resets_on_success(tmp_path: Path) -> None:
    now = [1000.0]
    slept: list[float] = []
    for _ in range(6):
        throttle.record_failure(tmp_path, clock=lambda: now[0])
    assert throttle.failures(tmp_path) == 6
    # another process (it reads the same file) must wait 4 s before its try
    waited = throttle.wait_turn(tmp_path, clock=lambda: now[0], sleep=slept.append)
    assert waited == pytest.approx(4) and slept == [pytest.approx(4)]
    throttle.record_success(tmp_path)
    assert throttle.wait_turn(tmp_path, clock=lambda: now[0], sleep=slept.append) == 0


def test_a_damaged_delay_file_counts_as_many_failures(tmp_path: Path) -> None:
    (tmp_path / throttle.STATE_FILE).write_text("{not json")
    assert throttle.failures(tmp_path) > throttle.FREE_TRIES


def test_the_command_line_waits_after_five_wrong_passphrases(tmp_path: Path) -> None:
    """Before: a wrong passphrase cost a constant 0.6 s, for ever, one process after another."""
    rig = make_rig(tmp_path)
    wrong = tmp_path / "wrong.pass"
    wrong.write_text("pas la bonne phrase du tout\n")
    runner = CliRunner()
    args = ["search", "--home", str(rig.home), "--user", USER, "--passphrase-file", str(wrong), "dupont"]
    for _ in range(5):
        assert runner.invoke(cli, args).exit_code == AuthenticationError.exit_code
    started = time.monotonic()
    sixth = runner.invoke(cli, args)  # a new command, as a script would run it: it must wait first
    assert time.monotonic() - started >= 1.9
    assert sixth.exit_code == AuthenticationError.exit_code and "patientez 2 s" in sixth.stderr
    failures = [e for e in Journal(rig.home).entries() if e.action == "unlock_failed"]
    assert len(failures) == 6 and failures[-1].details["next_try_in_s"] == 4


# --- searches journaled, results capped -------------------------------------------------------------


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    rig = make_rig(tmp_path)
    rig.ingest(rig.make(1))
    return rig


def test_one_letter_searches_are_journaled_with_the_query_sealed(rig: Rig) -> None:
    """Before: 26 one-letter searches listed every patient without a trace."""
    session = Session.unlock(rig.home, USER, PASSPHRASE)
    listed = 0
    for letter in "abcdefghijklmnopqrstuvwxyz":
        found = session.search(letter, limit=10_000)
        assert len(found) <= MAX_SEARCH_RESULTS
        listed += len(found)
    session.lock()
    searches = [e for e in Journal(rig.home).entries() if e.action == "search"]
    assert listed and sum(e.details["results"] for e in searches) == listed
    assert all(e.user == USER and e.details["limit"] == MAX_SEARCH_RESULTS for e in searches)
    box = keys.open_keyslot(rig.home, USER, PASSPHRASE).box_key
    assert {e.open_sealed(box)["query"] for e in searches} <= set("abcdefghijklmnopqrstuvwxyz")
    raw = b"".join(path.read_bytes() for path in (rig.home / "journal").glob("*.jsonl"))
    assert b'"query"' not in raw  # only in the sealed part


def test_a_search_whose_journal_fails_shows_nothing(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    from continuity.errors import JournalError

    session = Session.unlock(rig.home, USER, PASSPHRASE)
    original = session.journal.append

    def refuse(**kwargs: object) -> object:
        if kwargs.get("action") == "search":
            raise JournalError("disk full")
        return original(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(session.journal, "append", refuse)
    with pytest.raises(JournalError):
        session.search("a")
    session.lock()


def test_the_search_command_is_journaled_and_capped(rig: Rig) -> None:
    passphrase = rig.tmp / "alice.pass"
    passphrase.write_text(PASSPHRASE + "\n")
    result = CliRunner().invoke(cli, ["search", "--home", str(rig.home), "--user", USER, "--passphrase-file",
                                      str(passphrase), "--limit", "5000", "--json", "a"])  # fmt: skip
    assert result.exit_code == 0, result.output
    searches = [e for e in Journal(rig.home).entries() if e.action == "search"]
    assert len(searches) == 1 and searches[0].details["limit"] == MAX_SEARCH_RESULTS


# --- the process is made non-dumpable after unlock --------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import os, resource, sys
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    os.environ["CONTINUITY_TEST_WEAK_KDF"] = "1"
    from pathlib import Path
    from continuity import hardening
    from continuity.session import authenticate
    if sys.argv[2] == "unlock":
        authenticate(Path(sys.argv[1]), "alice", "cheval correct agrafe", command="test")
    print("dumpable", hardening.is_dumpable(), flush=True)
    os.abort()
    """
)


def _core_dumps_land_here() -> str | None:
    pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    if pattern.startswith("|") or "/" in pattern:
        return f"core dumps go elsewhere here (core_pattern {pattern!r})"
    if resource.getrlimit(resource.RLIMIT_CORE)[1] == 0:
        return "core dumps are forbidden by a hard limit here"
    return None


def test_an_unlocked_process_leaves_no_core_dump(tmp_path: Path) -> None:
    """The attack: crash (or SIGABRT) an unlocked process and read the keys in its core file."""
    reason = _core_dumps_land_here()
    if reason:
        pytest.skip(reason)
    rig = make_rig(tmp_path)
    results, said = {}, {}
    for mode in ("locked", "unlock"):
        workdir = tmp_path / mode
        workdir.mkdir()
        child = subprocess.run([sys.executable, "-c", _CHILD, str(rig.home), mode], cwd=workdir,
                               capture_output=True, text=True, timeout=120,
                               env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})  # fmt: skip
        assert child.returncode == -signal.SIGABRT, child.stderr
        results[mode] = [p.name for p in workdir.iterdir() if p.name.startswith("core")]
        said[mode] = child.stdout.strip()
    assert said == {"locked": "dumpable True", "unlock": "dumpable False"}
    assert results["locked"], "the control process wrote no core file: the test could not fail"
    assert results["unlock"] == []
