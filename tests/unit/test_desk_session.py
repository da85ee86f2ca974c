"""The desk in the journal, the session, the banner and the launcher (the SSH part is in tests/desk/)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from continuity import demo, desk, keys
from continuity.cli import cli
from continuity.errors import ContinuityError
from continuity.journal import Journal, JournalEntry, verify_journal
from continuity.session import HomeUnlocker, Session
from continuity.tui.app import make_app
from continuity.tui.widgets.banner import banner_text
from tests.unit.journal_helpers import make_appliance

KEY = desk.DeskKey("ssh-ed25519", bytes([0, 0, 0, 11]) + b"ssh-ed25519" + bytes([0, 0, 0, 32]) + b"\x07" * 32)


@pytest.fixture(autouse=True)
def _weak_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(keys.WEAK_KDF_ENV, "1")


@pytest.fixture(scope="module")
def practice(tmp_path_factory: pytest.TempPathFactory) -> demo.DemoPractice:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(keys.WEAK_KDF_ENV, "1")
        practice = demo.prepare(tmp_path_factory.mktemp("desk") / "home", patients=100, today=dt.date.today())
    desk.DeskRegistry(practice.home, executable=Path("/usr/bin/true")).add("salle-2", KEY, printer="salle2")
    return practice


def test_entries_name_their_desk_and_old_entries_are_unchanged(tmp_path: Path) -> None:
    appliance = make_appliance(tmp_path / "home")
    Journal(appliance.home).append(user="accueil", action="view_patient", patient_id="pat-1")
    at_desk = Journal(appliance.home, desk="salle-2").append(user="dr.martin", action="view_patient", patient_id="p2")
    entries = list(Journal(appliance.home).entries())
    assert [entry.desk for entry in entries] == [None, "salle-2"]
    lines = (appliance.home / "journal").glob("*.jsonl")
    raw = [json.loads(line) for path in lines for line in path.read_text().splitlines()]
    assert "desk" not in raw[0] and raw[1]["desk"] == "salle-2"
    assert at_desk.hash == at_desk.computed_hash()
    assert verify_journal(appliance.home).ok


def test_a_desk_changed_afterwards_breaks_the_chain(tmp_path: Path) -> None:
    appliance = make_appliance(tmp_path / "home")
    Journal(appliance.home, desk="salle-2").append(user="dr.martin", action="view_patient", patient_id="p2")
    [path] = (appliance.home / "journal").glob("*.jsonl")
    path.write_text(path.read_text().replace('"desk":"salle-2"', '"desk":"accueil"'))
    assert "edited" in [problem.kind for problem in verify_journal(appliance.home).problems]
    path.write_text(path.read_text().replace('"desk":"accueil"', '"desk":"Salle 2"'))
    assert "unreadable" in [problem.kind for problem in verify_journal(appliance.home).problems]
    with pytest.raises(ValueError, match="desk"):
        JournalEntry.from_line(path.read_bytes())
    with pytest.raises(ValueError, match="invalid desk"):
        Journal(appliance.home, desk="../x")


def test_a_desk_session_journals_everything_under_its_desk(practice: demo.DemoPractice) -> None:
    before = sum(1 for _ in Journal(practice.home).entries())
    session = Session.unlock(practice.home, demo.DEMO_USER, demo.DEMO_PASSPHRASE, desk="salle-2")
    assert session.desk == "salle-2" and session.banner().desk == "salle-2"
    assert "poste : salle-2 — utilisateur : accueil" in banner_text(session.banner())
    session.open_patient(session.search("martin")[0].patient.id)
    session.lock(reason="test")
    new = list(Journal(practice.home).entries())[before:]
    actions = [e.action for e in new if e.action != "search"]
    assert actions == ["unlock", "checkpoint", "view_patient", "lock", "checkpoint"]
    assert {entry.desk for entry in new} == {"salle-2"}
    with pytest.raises(ContinuityError):
        Session.unlock(practice.home, demo.DEMO_USER, "mauvaise phrase", desk="salle-2")
    assert list(Journal(practice.home).entries())[-1].desk == "salle-2"  # unlock_failed names the desk too


def test_the_appliance_screen_shows_no_desk(practice: demo.DemoPractice) -> None:
    session = Session.unlock(practice.home, demo.DEMO_USER, demo.DEMO_PASSPHRASE)
    try:
        assert session.desk is None and " poste " not in banner_text(session.banner())
    finally:
        session.lock()


def test_each_desk_remembers_its_own_last_user(practice: demo.DemoPractice) -> None:
    at_desk = HomeUnlocker(practice.home, desk="salle-2")
    at_desk.unlock(demo.DEMO_DOCTOR, demo.DEMO_DOCTOR_PASSPHRASE).lock()
    assert at_desk.last_user() == demo.DEMO_DOCTOR
    assert (practice.home / "tui-last-user-salle-2").read_text().strip() == demo.DEMO_DOCTOR
    assert not (practice.home / "tui-last-user").exists()  # the appliance's own screen is not changed


def test_a_removed_desk_cannot_unlock(practice: demo.DemoPractice) -> None:
    unlocker = HomeUnlocker(practice.home, desk="salle-9")
    with pytest.raises(desk.DeskError, match="not in"):
        unlocker.unlock(demo.DEMO_USER, demo.DEMO_PASSPHRASE)


def test_make_app_for_a_desk(practice: demo.DemoPractice) -> None:
    app = make_app(home=practice.home, desk="salle-2")
    assert app.desk is not None and app.desk.listed()
    assert isinstance(app.unlocker, HomeUnlocker) and app.unlocker.desk == "salle-2"
    assert "Poste : salle-2" in app.unlock_hint


def test_tui_desk_refusals(practice: demo.DemoPractice) -> None:
    runner = CliRunner()
    unknown = runner.invoke(cli, ["tui", "--home", str(practice.home), "--desk", "salle-9"])
    assert unknown.exit_code == desk.DeskError.exit_code and "n'est plus autorisé" in unknown.output
    bad = runner.invoke(cli, ["tui", "--home", str(practice.home), "--desk", "Salle 2"])
    assert bad.exit_code == desk.DeskError.exit_code and "Nom de poste invalide" in bad.output
    no_terminal = runner.invoke(cli, ["tui", "--home", str(practice.home), "--desk", "salle-2"])
    assert no_terminal.exit_code == desk.DeskError.exit_code and "ssh -t" in no_terminal.output
    command = runner.invoke(cli, ["tui", "--home", str(practice.home), "--desk", "salle-2"],
                            env={"SSH_ORIGINAL_COMMAND": "bash"})  # fmt: skip
    assert command.exit_code == desk.DeskError.exit_code and "aucune autre commande" in command.output
    last = list(Journal(practice.home).entries())[-2:]
    assert [(e.action, e.details) for e in last] == [
        ("desk_refused", {"desk": "salle-2", "reason": "no_terminal"}),
        ("desk_refused", {"desk": "salle-2", "reason": "command"}),
    ]
    with_db = runner.invoke(cli, ["tui", "--home", str(practice.home), "--desk", "salle-2", "--db", __file__])
    assert with_db.exit_code == 2
