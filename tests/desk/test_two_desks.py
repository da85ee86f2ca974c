"""Two desks at once over a real sshd, as two doctors in two rooms would: unlock, search, open, print.

Each desk is a tmux window running `ssh -t` with its own key; sshd runs the generated configuration
and each key's forced command opens `continuity tui --desk NAME`. Then: the journal names both desks
and verifies, a removed desk's open session ends at its next key press, and a cut connection
(SIGHUP) locks the session, journals it as ended and leaves nothing decrypted behind.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from continuity import desk
from continuity.journal import Journal, verify_journal
from tests.desk.conftest import DeskServer, desk_server
from tests.desk.terminal import Terminal

# The synthetic practice's fixed cast (continuity/synth.py, _showcase_people): same people whatever the seed.
PATIENTS = {"salle-1": ("ROUSSEAU", "rousseau 14/04/1976", "pat-000008"),
            "salle-2": ("N'DIAYE", "n'diaye 23/09/1981", "pat-000005")}  # fmt: skip
QUIET = ("checkpoint", "search")  # signed checkpoints; searches (journaled, capped) are not what we check
USERS = {"salle-1": ("accueil", 1), "salle-2": ("dr.garnier", 2)}  # login, position in the name list


@pytest.fixture(scope="module")
def server() -> Iterator[DeskServer]:
    with desk_server() as running:
        yield running


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    opened = Terminal()
    try:
        yield opened
    finally:
        opened.close()


def connect(terminal: Terminal, server: DeskServer, name: str) -> None:
    """What the desk's shortcut runs: ssh -t continuity@appliance, with that desk's key."""
    terminal.open(name, server.ssh(name, "-t"))
    terminal.wait_for(name, "Votre nom", timeout=30)
    assert f"Poste : {name}" in terminal.screen(name)


def unlock(terminal: Terminal, server: DeskServer, name: str) -> None:
    login, position = USERS[name]
    screen = terminal.wait_for(name, "Phrase de passe puis Entrée", timeout=30)  # every field is drawn
    if "Choisissez votre nom" in screen:  # else the desk preselects who unlocked there last
        terminal.press(name, "Enter")  # open the name list
        terminal.wait_for(name, login)
        terminal.press(name, *["Down"] * position, "Enter")
        time.sleep(0.5)  # the name list closes, and the passphrase field takes the focus
    assert login in terminal.screen(name)
    passphrase = server.passphrases[login]
    terminal.type(name, passphrase)
    terminal.wait_for(name, "•" * len(passphrase), timeout=10)
    terminal.press(name, "Enter")


def tui_pid(server: DeskServer, name: str) -> int:
    found = subprocess.run(["pgrep", "-f", f"python.* tui --home {server.home} --desk {name}$"], capture_output=True,
                           text=True, check=False).stdout.split()  # fmt: skip
    assert len(found) == 1, found
    return int(found[0])


def wait_gone(pid: int, timeout: float = 30, *, server: DeskServer | None = None) -> None:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        try:
            state = next((line for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                          if line.startswith("State:")), "")  # fmt: skip
        except OSError:
            return
        if "zombie" in state:  # ended; its parent (tmux, sshd) has not collected it yet
            return
        time.sleep(0.1)
    tail = [(e.action, e.desk, dict(e.details)) for e in Journal(server.home).entries()][-3:] if server else []
    raise AssertionError(f"process {pid} ({state}) still there {timeout} s after it was told to end; journal {tail}")


def test_two_desks_at_once(server: DeskServer, terminal: Terminal) -> None:
    before = server.journal_count()
    for name in PATIENTS:
        connect(terminal, server, name)
    for name in PATIENTS:  # both unlock together: two argon2id derivations at once
        unlock(terminal, server, name)
    for name, (login, _) in USERS.items():
        screen = terminal.wait_for(name, f"poste : {name} — utilisateur : {login}", timeout=90)
        assert "MODE DÉGRADÉ" in screen
    for name, (_, query, _) in PATIENTS.items():
        terminal.type(name, query)
    for name, (surname, _, _) in PATIENTS.items():
        terminal.wait_for(name, "1 patient —")
        terminal.press(name, "Enter")
        terminal.wait_for(name, "Imprimer le résumé")
        assert surname in terminal.screen(name)
        terminal.press(name, "p")
        # Watched at once: the notice is a toast that goes after a few seconds, and on a loaded machine
        # the other desk's steps can take longer than that. It wraps on narrow toasts: its start only.
        terminal.wait_for(name, "Imprimé — le résumé" if server.printer else "Impression impossible", timeout=60)
    for name in PATIENTS:
        terminal.press(name, "C-q")
        terminal.wait_for(name, "Quitter Continuity ?")  # quitting asks first (issue 11)
        terminal.press(name, "o")
    for name in PATIENTS:
        wait_dead(terminal, name)

    entries = list(Journal(server.home).entries())[before:]
    for name, (login, _) in USERS.items():
        patient = PATIENTS[name][2]
        mine = [(e.action, e.patient_id) for e in entries if e.desk == name and e.action not in QUIET]
        assert mine == [("unlock", None), ("view_patient", patient), ("print_summary", patient), ("lock", None)]
        assert {e.user for e in entries if e.desk == name} == {login}
    locks = [e for e in entries if e.action == "lock"]
    assert {e.details["reason"] for e in locks} == {"quit"}
    report = verify_journal(server.home)
    assert report.ok, report.problems
    assert report.unsigned_tail == 0  # each lock ended with a signed checkpoint


def wait_dead(terminal: Terminal, name: str, timeout: float = 20) -> None:
    """The window's ssh client has ended (it does when the interface on the appliance ends)."""
    deadline = time.monotonic() + timeout
    while not terminal.pane_dead(name):
        assert time.monotonic() < deadline, f"{name}: ssh still connected:\n{terminal.screen(name)}"
        time.sleep(0.1)


def _home_files(home: Path) -> set[Path]:
    return {path for path in home.rglob("*") if path.is_file()}


def _temporary_leftovers() -> set[str]:
    return {entry.name for entry in Path(tempfile.gettempdir()).iterdir() if entry.name.startswith("continuity-")}


def test_a_dropped_connection_locks_and_journals_the_end(server: DeskServer, terminal: Terminal) -> None:
    connect(terminal, server, "salle-1")
    unlock(terminal, server, "salle-1")
    terminal.wait_for("salle-1", "poste : salle-1", timeout=60)
    terminal.type("salle-1", PATIENTS["salle-1"][1])
    terminal.wait_for("salle-1", "1 patient —")
    terminal.press("salle-1", "Enter")
    terminal.wait_for("salle-1", "Imprimer le résumé")
    interface = tui_pid(server, "salle-1")
    files_before = _home_files(server.home)
    temporary_before = _temporary_leftovers()
    client = terminal.pane_pid("salle-1")  # the ssh client
    os.kill(client, 9)  # the network cable is pulled: the client vanishes without a word
    wait_gone(interface, server=server)

    last = list(Journal(server.home).entries())[-2:]
    assert [(e.action, e.desk, e.user) for e in last] == [("lock", "salle-1", "accueil"),
                                                          ("checkpoint", "salle-1", "accueil")]  # fmt: skip
    assert last[0].details == {"reason": "hangup"}
    assert verify_journal(server.home).ok
    # Nothing decrypted left behind: the process is gone, and no file appeared but the journal's.
    new_files = {p.relative_to(server.home) for p in _home_files(server.home) - files_before}
    assert {p.parts[0] for p in new_files} <= {"journal"}, new_files
    assert _temporary_leftovers() <= temporary_before


def test_removing_a_desk_ends_its_session_at_the_next_key(server: DeskServer, terminal: Terminal) -> None:
    registry = desk.DeskRegistry(server.home)
    kept = registry.get("salle-2")
    assert kept is not None
    connect(terminal, server, "salle-2")
    unlock(terminal, server, "salle-2")
    terminal.wait_for("salle-2", "poste : salle-2", timeout=60)
    interface = tui_pid(server, "salle-2")
    registry.remove("salle-2")
    try:
        terminal.type("salle-2", "m")
        screen = terminal.wait_for("salle-2", "Ce poste a été retiré", timeout=10)
        assert "Votre phrase de passe" in screen and "MARTIN" not in screen  # locked; the search never ran
        terminal.press("salle-2", "Enter")  # any key closes the farewell screen and the connection
        wait_gone(interface)
        last = list(Journal(server.home).entries())[-2:]
        assert [(e.action, e.desk) for e in last] == [("lock", "salle-2"), ("checkpoint", "salle-2")]
        assert last[0].details == {"reason": "desk_removed"}
        # And it cannot come back.
        result = server.run(server.ssh("salle-2", "-T"))
        assert "Permission denied (publickey)" in result.stderr
    finally:
        registry.add("salle-2", kept.key, printer=kept.printer)


def test_a_shutdown_locks_too(server: DeskServer, terminal: Terminal) -> None:
    """SIGTERM (the appliance shutting down, systemd stopping sshd's sessions) ends the session the same way."""
    from continuity import desk as desk_module

    command = [str(desk_module.continuity_executable()), "tui", "--home", str(server.home), "--desk", "salle-1"]
    terminal.open("salle-1", command)  # on the appliance's own terminal: no ssh in between
    terminal.wait_for("salle-1", "Votre nom", timeout=30)
    unlock(terminal, server, "salle-1")
    terminal.wait_for("salle-1", "poste : salle-1", timeout=60)
    interface = tui_pid(server, "salle-1")
    os.kill(interface, 15)
    wait_gone(interface, server=server)
    last = list(Journal(server.home).entries())[-2:]
    assert [(e.action, e.desk) for e in last] == [("lock", "salle-1"), ("checkpoint", "salle-1")]
    assert last[0].details == {"reason": "terminated"}
