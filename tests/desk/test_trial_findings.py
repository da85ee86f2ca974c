"""What trying desks from a second terminal found (docs/desks.md, "Tried from a second terminal").

Each test reproduces one thing a doctor or the person setting up the appliance met while following
docs/desks.md word for word, against the real parts: the `continuity` command, real ssh-keygen, the real
CUPS client. The refusals seen through sshd are in test_ssh_restrictions.py.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from continuity import demo, desk, keys, printing
from continuity.errors import NotInitialized

from .conftest import strict_modes_base

KEY = desk.DeskKey("ssh-ed25519", bytes([0, 0, 0, 11]) + b"ssh-ed25519" + bytes([0, 0, 0, 32]) + b"\x07" * 32)
needs_ssh_keygen = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen not installed")


def continuity(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(desk.continuity_executable()), *args], capture_output=True, text=True,
                          timeout=60, check=False, env=env)  # fmt: skip


@needs_ssh_keygen
def test_desk_config_refuses_a_home_that_is_not_an_appliance(tmp_path: Path) -> None:
    # docs/desks.md's dedicated-server lines had no home: the default one (snapshots/ of a checkout, or
    # ~/.local/share/continuity) got an sshd configuration pointing at a keys file that would never
    # exist, accepted by `sshd -t`, and every desk then met "Permission denied (publickey)".
    out = tmp_path / "sshd"
    empty = tmp_path / "not-a-home"
    result = continuity("desk", "config", "--port", "2222", "--out", str(out), "--listen", "127.0.0.1",
                        "--home", str(empty))  # fmt: skip
    assert result.returncode == NotInitialized.exit_code, result.stdout + result.stderr
    assert f"Le dossier {empty} n'est pas celui d'un appareil Continuity" in result.stderr
    assert "--home" in result.stderr
    assert not out.exists()


@needs_ssh_keygen
def test_desk_config_before_the_first_desk_gives_no_false_warning() -> None:
    # The documented order is `desk config` (§1) then `desk add` (§2): ssh/ does not exist yet. It used to
    # warn that "a folder on the way is writable by others: …/ssh: No such file or directory".
    base = strict_modes_base()
    try:
        home = base / "home"
        home.mkdir(mode=0o700)
        written = desk.write_sshd_config(base / "sshd", home=home, port=2222, user="root" if os.getuid() == 0
                                         else os.environ.get("USER") or "root", listen=["127.0.0.1"])  # fmt: skip
        assert not (home / desk.SSH_DIR).exists()
        assert not any("modifiable par d'autres" in warning for warning in written.warnings_fr), written.warnings_fr
        # A folder that is really writable by others on the way is still reported.
        home.chmod(0o777)
        again = desk.write_sshd_config(base / "sshd", home=home, port=2222, user="root" if os.getuid() == 0
                                       else os.environ.get("USER") or "root")  # fmt: skip
        assert any(str(home) in warning for warning in again.warnings_fr)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _cups_answers() -> bool:
    if shutil.which("lpstat") is None:
        return False
    result = subprocess.run(["lpstat", "-r"], capture_output=True, text=True, check=False,
                            env={**os.environ, "LC_ALL": "C"})  # fmt: skip
    return "scheduler is running" in result.stdout


@pytest.mark.skipif(not _cups_answers(), reason="no running CUPS scheduler (lpstat -r): nothing to ask")
def test_a_desk_printer_unknown_to_cups_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `desk add cabinet-2 --printer cabinet2-laser` before the queue exists (docs/desks.md §2 creates it
    # with lpadmin): the doctor's print was saved with « aucune imprimante par défaut », which sends
    # whoever reads it to the appliance's default printer instead of the desk's queue.
    monkeypatch.delenv("LPDEST", raising=False)
    monkeypatch.delenv("PRINTER", raising=False)
    desk.use_printer(desk.Desk("cabinet-2", KEY, "cabinet2-laser-absent", "t"))
    with pytest.raises(printing.PrintFailed) as failed:
        printing.print_pdf(b"%PDF-1.4\n%%EOF\n", save_to=tmp_path, title="Essai")
    assert "l'imprimante « cabinet2-laser-absent » est inconnue" in failed.value.message_fr
    assert "aucune imprimante par défaut" not in failed.value.message_fr
    assert failed.value.saved_to is not None and failed.value.saved_to.parent == tmp_path


@pytest.fixture(scope="module")
def practice(tmp_path_factory: pytest.TempPathFactory) -> demo.DemoPractice:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(keys.WEAK_KDF_ENV, "1")
        return demo.prepare(tmp_path_factory.mktemp("trial") / "home", patients=30, today=dt.date.today())


def test_a_printer_change_reaches_a_session_already_open(practice: demo.DemoPractice,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    # `desk add cabinet-2 --replace --printer continuity-pdf` while the doctor was connected: their next
    # ordonnance still went to the old (missing) queue until they reconnected.
    monkeypatch.delenv("LPDEST", raising=False)
    monkeypatch.delenv("PRINTER", raising=False)
    registry = desk.DeskRegistry(practice.home, executable=Path("/usr/bin/true"))
    registry.add("cabinet-2", KEY, printer="cabinet2-laser")
    desk.use_printer(desk.require_listed(practice.home, "cabinet-2"))  # what `tui --desk` does at start
    presence = desk.DeskPresence(practice.home, "cabinet-2")
    assert presence.listed() and os.environ["PRINTER"] == "cabinet2-laser"
    registry.add("cabinet-2", KEY, printer="cabinet2-couleur", replace=True)
    assert presence.listed()  # the interface asks at every key press
    assert os.environ["PRINTER"] == os.environ["LPDEST"] == "cabinet2-couleur"
    registry.add("cabinet-2", KEY, printer=None, replace=True)
    assert presence.listed()
    assert "PRINTER" not in os.environ and "LPDEST" not in os.environ  # back to the appliance's default
