"""`continuity doctor`: each failing check is reported with what to do; nothing reads as OK unchecked."""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from continuity import doctor, envelope, keys, store
from continuity import journal as journal_module
from continuity.doctor import Status
from continuity.journal import Journal
from tests.unit.journal_helpers import Clock
from tests.unit.test_journal import tmpfs

PASSPHRASE = "cheval agrafe batterie"
NOW = dt.datetime(2026, 11, 28, 8, 0, tzinfo=dt.UTC)


class FakeCups:
    """lpstat, and the system queries doctor makes (systemctl, timedatectl, crontab), as on an installed PC.

    A fake because the test machine has no running systemd and no CUPS queue to answer the same way
    every time; the real commands are run by .ci/install-trial.sh on a fresh Debian."""

    def __init__(
        self,
        default: str = "system default destination: Accueil",
        printers: str = "",
        timers: str = "enabled\nenabled\n",
        ntp: str = "yes\n",
        crontab: str | None = None,
    ) -> None:
        self.default = default
        self.printers = printers or "printer Accueil is idle.  enabled since Sat 28 Nov 2026"
        self.answers = {"systemctl": timers, "timedatectl": ntp, "crontab": crontab}
        self.calls: list[list[str]] = []

    def which(self, name: str) -> str | None:
        return None if name in self.answers and self.answers[name] is None else f"/usr/bin/{name}"

    def run(self, command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append(command)
        if command[0] in self.answers:
            return subprocess.CompletedProcess(command, 0, self.answers[command[0]] or "", "")
        out = self.default if command[1] == "-d" else self.printers
        return subprocess.CompletedProcess(command, 0, out, "")


@functools.cache
def rendered() -> bytes:
    """The real test ordonnance, rendered once for the whole module."""
    return doctor.render_test_ordonnance()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ready appliance: keys, one staff slot, a pinned publisher, fresh data, a journal."""
    monkeypatch.setenv(keys.WEAK_KDF_ENV, "1")
    monkeypatch.setattr(journal_module, "_now", Clock(NOW - dt.timedelta(hours=8)))
    path = tmp_path / "home"
    keys.init_appliance(path, "dr.martin", PASSPHRASE, keys.WEAK_FOR_TESTS)
    keys.generate_publisher_key(tmp_path)
    keys.trust_publisher(path, tmp_path / "publisher.pub")
    write_state(path, created_at=NOW - dt.timedelta(hours=9))
    Journal(path).append(user="system", action="pull_accepted", snapshot_seq=5)
    path.chmod(0o700)  # as the installed home (StateDirectoryMode=0700)
    return path


def write_state(home: Path, *, created_at: dt.datetime) -> None:
    store_dir = home / store.STORE
    store_dir.mkdir(exist_ok=True)
    # The state file as store.py writes it (the doctor reads it through Store.read_state).
    name = f"{5:020d}.snap"
    (store_dir / name).write_bytes(b"")
    current = {
        "file": name,
        "practice_id": "cab-1",
        "sequence": 5,
        "created_at": envelope.format_time(created_at),
        "expires_at": envelope.format_time(created_at + dt.timedelta(days=30)),
        "payload_sha256": "0" * 64,  # the state's shape is checked on read (store._state_problem)
    }
    state = {"version": 1, "current": current, "attempts": [], "conditional": {}}
    (home / store.STATE_FILE).write_text(json.dumps(state))


def by_name(checks: list[doctor.Check]) -> dict[str, doctor.Check]:
    return {check.name_fr: check for check in checks}


def run_checks(
    home: Path, cups: FakeCups | None = None, now: dt.datetime = NOW, render: Any = rendered
) -> dict[str, doctor.Check]:
    cups = cups or FakeCups()
    return by_name(doctor.run_checks(home, now=now, which=cups.which, run=cups.run, render=render))


def test_a_ready_appliance_passes(home: Path) -> None:
    checks = run_checks(home)
    assert {name: check.status for name, check in checks.items()} == dict.fromkeys(checks, Status.OK)
    assert "Tout est prêt." in doctor.checklist_text(list(checks.values()))


def test_an_empty_home_fails_with_remedies(tmp_path: Path) -> None:
    checks = run_checks(tmp_path)
    assert checks["Accès du personnel (trousseau)"].status is Status.FAILED
    assert "continuity init" in checks["Accès du personnel (trousseau)"].remedy_fr
    assert checks["Éditeur de confiance"].status is Status.FAILED
    assert checks["Fraîcheur des données"].status is Status.FAILED
    assert checks["Horloge"].status is Status.UNCHECKED
    text = doctor.checklist_text(list(checks.values()))
    assert "non vérifié" in text
    assert "À faire" in text
    assert "point(s) en échec" in text


def test_a_damaged_keyslot_is_named(home: Path) -> None:
    (home / "keyslots" / "dr.martin.json").write_text("{not json")
    check = run_checks(home)["Accès du personnel (trousseau)"]
    assert check.status is Status.FAILED
    assert "dr.martin" in check.detail_fr


def test_old_data_warns_then_fails(home: Path) -> None:
    write_state(home, created_at=NOW - dt.timedelta(days=3))
    assert run_checks(home)["Fraîcheur des données"].status is Status.WARNING
    write_state(home, created_at=NOW - dt.timedelta(days=10))
    check = run_checks(home)["Fraîcheur des données"]
    assert check.status is Status.FAILED
    assert "continuity pull" in check.remedy_fr


def test_a_broken_journal_fails(home: Path) -> None:
    Journal(home).append(user="system", action="pull_accepted")
    path = next((home / "journal").glob("*.jsonl"))
    path.write_bytes(path.read_bytes().splitlines(keepends=True)[1])
    check = run_checks(home)["Journal d'accès"]
    assert check.status is Status.FAILED
    assert "DPO" in check.remedy_fr


def test_months_kept_past_retention_are_flagged(home: Path) -> None:
    journal_dir = home / "journal"
    current = next(journal_dir.glob("*.jsonl"))
    (journal_dir / "2024-01.jsonl").write_bytes(current.read_bytes())
    current.unlink()
    Journal(home).append(user="system", action="pull_accepted")
    check = run_checks(home)["Journal d'accès"]
    assert check.status is Status.WARNING
    assert "continuity journal retention" in check.remedy_fr


def test_printer_missing_or_without_default(home: Path) -> None:
    class NoCups(FakeCups):
        def which(self, name: str) -> str | None:
            return None

    assert run_checks(home, NoCups())["Imprimante"].status is Status.FAILED
    no_default = FakeCups(default="no system default destination")
    assert run_checks(home, no_default)["Imprimante"].status is Status.WARNING
    disabled = FakeCups(printers="printer Accueil disabled since Sat 28 Nov 2026 - Paused")
    check = run_checks(home, disabled)["Imprimante"]
    assert check.status is Status.WARNING
    assert "cupsenable" in check.remedy_fr


def test_clock_behind_the_journal_or_the_data_fails(home: Path) -> None:
    check = run_checks(home, now=NOW - dt.timedelta(days=1))["Horloge"]
    assert check.status is Status.FAILED
    assert "heure" in check.remedy_fr


def test_a_full_disk_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with tmpfs(tmp_path / "small", "size=64k") as small:
        checks = run_checks(small)
        assert checks["Espace disque"].status is Status.FAILED
        assert checks["Journal inscriptible"].status is Status.OK
        subprocess.run(["mount", "-o", "remount,ro", str(small)], check=True)
        assert run_checks(small)["Journal inscriptible"].status is Status.FAILED


def test_doctor_command_exit_codes(home: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from continuity.cli import cli

    result = CliRunner().invoke(cli, ["doctor", "--home", str(tmp_path / "empty")])
    assert result.exit_code == 2  # monitoring-plugin CRITICAL: a check failed
    assert "ÉCHEC" in result.stdout
    assert "À faire" in result.stdout


def test_the_test_ordonnance_is_a_real_pdf_marked_exercice(tmp_path: Path) -> None:
    from tests.unit.pdf_fixtures import flat, pdf_text

    text = flat(" ".join(pdf_text(rendered(), tmp_path)))
    assert "paracétamol 500 mg" in text
    assert "EXERCICE — NE PAS DÉLIVRER" in text


def test_a_broken_renderer_fails_the_check(home: Path) -> None:
    def broken() -> bytes:
        raise OSError("cannot load library 'libpango-1.0-0'")

    check = run_checks(home, render=broken)["Impression des ordonnances (PDF)"]
    assert check.status is Status.FAILED
    assert "libpango" in check.detail_fr
    assert "apt-get install" in check.remedy_fr


def test_the_schedule_systemd_or_cron(home: Path) -> None:
    disabled = FakeCups(timers="disabled\nenabled\n", crontab="")
    check = run_checks(home, disabled)["Tâches programmées"]
    assert check.status is Status.WARNING
    assert "continuity-pull.timer (disabled)" in check.detail_fr
    cron = FakeCups(timers=None, crontab="30 2 * * * /usr/local/bin/continuity pull https://x/latest.snap\n")
    assert run_checks(home, cron)["Tâches programmées"].status is Status.OK
    assert run_checks(home, FakeCups(timers=None, crontab=None))["Tâches programmées"].status is Status.WARNING


def test_clock_not_synchronised_warns(home: Path) -> None:
    check = run_checks(home, FakeCups(ntp="no\n"))["Horloge"]
    assert check.status is Status.WARNING
    assert "timedatectl set-ntp true" in check.remedy_fr
    assert "(synchronisée)" in run_checks(home)["Horloge"].detail_fr


def test_ownership_and_modes(home: Path) -> None:
    name = "Propriétaire et droits des fichiers"
    (home / "journal").mkdir(exist_ok=True)
    loose = home / "journal" / "loose"
    loose.write_text("x")
    loose.chmod(0o666)
    check = run_checks(home)[name]
    assert check.status is Status.FAILED
    assert "journal/loose" in check.detail_fr
    loose.chmod(0o600)
    home.chmod(0o755)
    assert run_checks(home)[name].status is Status.WARNING
    home.chmod(0o700)
    assert run_checks(home)[name].status is Status.OK
    if os.geteuid() == 0:  # only root can give a file away, as a careless `sudo` does
        os.chown(loose, 65534, 65534)
        check = run_checks(home)[name]
        assert check.status is Status.FAILED
        assert "sudo chown -R continuity:continuity" in check.remedy_fr


def test_json_keeps_the_plugin_exit_code(home: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from continuity.cli import cli

    result = CliRunner().invoke(cli, ["doctor", "--json", "--home", str(tmp_path / "empty")])
    assert result.exit_code == 2
    rows = json.loads(result.stdout)
    assert {row["status"] for row in rows} >= {"failed"}
