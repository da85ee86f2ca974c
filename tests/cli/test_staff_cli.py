"""`continuity init` / `staff add|remove|list` with roles, and failed unlocks journaled from every command."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from continuity import keys
from continuity.cli import cli
from continuity.errors import AuthenticationError, StaffError
from continuity.journal import Journal
from tests.transport_helpers import use_weak_kdf

RPPS = "10101010105"


@pytest.fixture(autouse=True)
def _weak_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    use_weak_kdf(monkeypatch)
    monkeypatch.delenv("CONTINUITY_HOME", raising=False)


def run(*args: object, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def passphrase_file(tmp: Path, name: str, text: str) -> Path:
    path = tmp / f"{name}.pass"
    path.write_text(text + "\n")
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    doctor = passphrase_file(tmp_path, "doctor", "cheval correct agrafe")
    desk = passphrase_file(tmp_path, "desk", "bureau lumineux cerise")
    out = run("init", "--home", home, "--user", "dr.martin", "--role", "prescriber", "--rpps", RPPS,
              "--passphrase-file", doctor).stdout  # fmt: skip
    assert "dr.martin (prescripteur)" in out and "administration key" in out
    run("staff", "add", "--home", home, "accueil", "--user", "dr.martin", "--passphrase-file", doctor,
        "--new-passphrase-file", desk)  # fmt: skip
    return home


def test_staff_list_shows_roles_and_rpps(home: Path) -> None:
    lines = run("staff", "list", "--home", home).stdout.splitlines()
    assert [line.split() for line in lines] == [["accueil", "accueil"], ["dr.martin", "prescripteur", "RPPS", RPPS]]


def test_reception_cannot_add_or_remove_staff(home: Path, tmp_path: Path) -> None:
    desk = tmp_path / "desk.pass"
    new = passphrase_file(tmp_path, "new", "une autre phrase longue")
    added = run("staff", "add", "--home", home, "complice", "--role", "prescriber", "--rpps", "10000000009",
                "--user", "accueil", "--passphrase-file", desk, "--new-passphrase-file", new,
                code=StaffError.exit_code)  # fmt: skip
    assert "Seul un prescripteur" in added.stderr
    removed = run("staff", "remove", "--home", home, "dr.martin", "--user", "accueil", "--passphrase-file", desk,
                  code=StaffError.exit_code)  # fmt: skip
    assert "Seul un prescripteur" in removed.stderr
    assert [m.name for m in keys.staff_roster(home)] == ["accueil", "dr.martin"]
    refused = [e for e in Journal(home).entries() if e.action == "staff_refused"]
    assert [(e.user, e.details["command"]) for e in refused] == [("accueil", "staff add"), ("accueil", "staff remove")]


def test_bad_roles_are_refused_before_any_passphrase(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run("init", "--home", home, "--user", "dr.x", "--role", "prescriber", code=StaffError.exit_code)
    assert "RPPS" in result.stderr
    result = run("init", "--home", home, "--user", "dr.x", "--role", "prescriber", "--rpps", "12345678901",
                 code=StaffError.exit_code)  # fmt: skip
    assert "RPPS invalide" in result.stderr
    assert not home.exists() or not (home / keys.APPLIANCE_PUB).exists()


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("staff add", ["staff", "add", "intrus", "--new-passphrase-file", "{wrong}"]),
        ("staff remove", ["staff", "remove", "accueil"]),
        ("journal checkpoint", ["journal", "checkpoint"]),
        ("journal export", ["journal", "export", "--since", "2026-01-01", "--out", "{tmp}/export"]),
    ],
)
def test_every_failed_unlock_is_journaled(home: Path, tmp_path: Path, command: str, args: list[str]) -> None:
    """Before: `journal checkpoint`, `journal export`, `staff add/remove` left no trace of a wrong passphrase."""
    wrong = passphrase_file(tmp_path, "wrong", "pas la bonne phrase du tout")
    filled = [arg.format(wrong=wrong, tmp=tmp_path) for arg in args]
    run(*filled, "--home", home, "--user", "dr.martin", "--passphrase-file", wrong, code=AuthenticationError.exit_code)
    last = list(Journal(home).entries())[-1]
    assert (last.action, last.user) == ("unlock_failed", "dr.martin")
    assert last.details == {"reason": "AuthenticationError", "command": command}
