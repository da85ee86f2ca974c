"""End to end through the command line: keygen → init → trust → publish → serve → pull → status → search."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from continuity import keys, synth
from continuity.cli import cli
from continuity.errors import AuthenticationError, Equivocation, NotInitialized, StaffError
from continuity.store import Store
from tests.transport_helpers import PASSPHRASE, serving, use_weak_kdf


@pytest.fixture(autouse=True)
def _weak_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    use_weak_kdf(monkeypatch)


def run(*args: object, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


class Practice:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.home = tmp / "home"
        self.publisher = tmp / "publisher"
        self.passphrase_file = tmp / "alice.pass"
        self.passphrase_file.write_text(PASSPHRASE + "\n")
        self.sources = tmp / "fhir"
        self.summary = synth.write_practice(self.sources, patients=40, seed=7)

    def publish(self, sequence: int, out: Path, *extra: object) -> Result:
        return run(
            "publisher", "publish", self.sources, "--key", self.publisher, "--recipient",
            self.home / "appliance.pub", "--practice", "cabinet-test", "--seq", sequence, "--out", out, *extra,
        )  # fmt: skip


@pytest.fixture
def practice(tmp_path: Path) -> Practice:
    practice = Practice(tmp_path)
    keygen = run("publisher", "keygen", "--out", practice.publisher)
    fingerprint = keys.fingerprint(bytes(keys.load_publisher_verify_key(practice.publisher / "publisher.pub")))
    assert fingerprint in keygen.output
    init = run("init", "--home", practice.home, "--user", "alice", "--passphrase-file", practice.passphrase_file)
    assert "appliance.pub" in init.output
    trusted = run("trust", "--home", practice.home, practice.publisher / "publisher.pub")
    assert fingerprint in trusted.output
    return practice


def test_end_to_end_over_http(practice: Practice) -> None:
    snap = practice.tmp / "s1.snap"
    published = practice.publish(1, snap)
    assert "sequence 1" in published.output
    # the plaintext database never stays on disk next to the output
    assert sorted(p.name for p in practice.tmp.iterdir() if p.is_file()) == ["alice.pass", "s1.snap"]

    with serving() as server:
        server.files["/cabinet/latest.snap"] = snap.read_bytes()
        url = server.url("/cabinet/latest.snap")
        assert "accepted snapshot 1" in run("pull", "--home", practice.home, url).output
        assert "unchanged" in run("pull", "--home", practice.home, url).output

    status = run("status", "--home", practice.home, "--json")
    report = json.loads(status.stdout)
    assert report["status"] == "OK"
    assert report["current"]["sequence"] == 1
    assert report["current"]["counts"]["patient"] == 40
    assert report["last_attempt"]["outcome"] == "unchanged"
    text = run("status", "--home", practice.home).stdout
    assert text.startswith("CONTINUITY OK - snapshot #1") and "| age=" in text

    found = run(
        "search", "--home", practice.home, "--user", "alice", "--passphrase-file", practice.passphrase_file,
        "--json", "DUPONT",
    )  # fmt: skip
    ids = [row["id"] for row in json.loads(found.stdout)]
    assert practice.summary.showcase["several_given_names"] in ids
    assert "instantané n° 1" in found.stderr

    shown = run(
        "show", "--home", practice.home, "--user", "alice", "--passphrase-file", practice.passphrase_file,
        practice.summary.showcase["allergy_penicillin"],
    )  # fmt: skip
    assert shown.stdout.strip()

    # nothing in the home is plaintext patient data
    family_names = {row["birth_name"] for row in json.loads(found.stdout)}
    for path in practice.home.rglob("*"):
        if path.is_file() and "journal" not in path.parts:
            content = path.read_bytes()
            assert not any(name.encode() in content for name in family_names), path


def test_wrong_passphrase_exit_code(practice: Practice) -> None:
    practice.publish(1, practice.tmp / "s1.snap")
    run("pull", "--home", practice.home, practice.tmp / "s1.snap")
    wrong = practice.tmp / "wrong.pass"
    wrong.write_text("ce n'est pas la bonne\n")
    result = run(
        "search", "--home", practice.home, "--user", "alice", "--passphrase-file", wrong, "DUPONT",
        code=AuthenticationError.exit_code,
    )  # fmt: skip
    assert "Nom ou phrase de passe incorrect" in result.output


def test_rejection_exit_code_and_status_alarm(practice: Practice) -> None:
    practice.publish(1, practice.tmp / "a.snap")
    # A second publisher record: with the same one, `publish` itself refuses to reuse sequence 1.
    practice.publish(1, practice.tmp / "b.snap", "--state", practice.tmp / "another-publisher-state.json")
    run("pull", "--home", practice.home, practice.tmp / "a.snap")
    result = run("pull", "--home", practice.home, practice.tmp / "b.snap", code=Equivocation.exit_code)
    assert "ALERTE" in result.output
    status = run("status", "--home", practice.home, code=2)
    assert "equivocation" in status.stdout


def test_status_codes(practice: Practice, tmp_path: Path) -> None:
    assert "not initialised" in run("status", "--home", tmp_path / "nowhere", code=3).stdout
    assert "no snapshot" in run("status", "--home", practice.home, code=2).stdout
    practice.publish(1, practice.tmp / "s.snap")
    run("pull", "--home", practice.home, practice.tmp / "s.snap")
    run("status", "--home", practice.home, code=0)
    run("status", "--home", practice.home, "--warn-age", "0s", code=3)  # 0s is not a valid duration
    created = dt.datetime.fromisoformat(
        Store(practice.home).read_state()["current"]["created_at"].replace("Z", "+00:00")
    )
    assert dt.datetime.now(dt.UTC) - created < dt.timedelta(minutes=5)


def test_status_warn_and_crit_ages(practice: Practice) -> None:
    practice.publish(1, practice.tmp / "s.snap")
    run("pull", "--home", practice.home, practice.tmp / "s.snap")
    state_path = practice.home / "state.json"
    state = json.loads(state_path.read_text())
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=40)).strftime("%Y-%m-%dT%H:%M:%SZ")
    state["current"]["created_at"] = old
    state_path.write_text(json.dumps(state))
    assert "WARNING" in run("status", "--home", practice.home, code=1).stdout
    assert "CRITICAL" in run("status", "--home", practice.home, "--warn-age", "12h", "--crit-age", "1d", code=2).stdout
    run("status", "--home", practice.home, "--warn-age", "2d", code=0)


def test_staff_commands(practice: Practice) -> None:
    bob = practice.tmp / "bob.pass"
    bob.write_text("la phrase du docteur est longue\n")
    # alice (reception, the first member) enrols the first prescriber, who then manages staff.
    run(
        "staff", "add", "--home", practice.home, "bob", "--role", "prescriber", "--rpps", "10101010105",
        "--user", "alice", "--passphrase-file", practice.passphrase_file, "--new-passphrase-file", bob,
    )  # fmt: skip
    listed = run("staff", "list", "--home", practice.home).stdout.splitlines()
    assert [line.split()[0] for line in listed] == ["alice", "bob"]
    run("staff", "remove", "--home", practice.home, "alice", "--user", "bob", "--passphrase-file", bob)
    assert [line.split()[0] for line in run("staff", "list", "--home", practice.home).stdout.splitlines()] == ["bob"]
    run(
        "staff", "remove", "--home", practice.home, "bob", "--user", "bob", "--passphrase-file", bob,
        code=StaffError.exit_code,
    )  # fmt: skip


def test_commands_on_an_uninitialised_home(tmp_path: Path) -> None:
    (tmp_path / "key.pub").write_text("continuity-publisher-v1:" + "A" * 43 + "=\n")
    run("trust", "--home", tmp_path / "h", tmp_path / "key.pub", code=NotInitialized.exit_code)
    run("pull", "--home", tmp_path / "h", tmp_path / "key.pub", code=NotInitialized.exit_code)


def test_init_refuses_a_short_passphrase(tmp_path: Path) -> None:
    short = tmp_path / "p"
    short.write_text("court\n")
    run("init", "--home", tmp_path / "h", "--user", "alice", "--passphrase-file", short, code=StaffError.exit_code)
    assert not (tmp_path / "h" / "appliance.pub").exists()


def test_watch_once_imports_the_inbox(practice: Practice) -> None:
    practice.publish(1, practice.home / "inbox" / "usb.snap")
    run("watch", "--home", practice.home, "--once")
    assert json.loads(run("status", "--home", practice.home, "--json").stdout)["current"]["sequence"] == 1
    assert list((practice.home / "inbox").glob("*.snap")) == []


# --- status answers in monitoring-plugin form, whatever happens (issue #12 item 5) -------------------


def plugin_line(result: Result) -> str:
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    return lines[0]


def test_status_usage_errors_are_unknown_not_critical(practice: Practice) -> None:
    bad_option = run("status", "--home", practice.home, "--bogus", code=3)
    assert plugin_line(bad_option).startswith("CONTINUITY UNKNOWN - status unknown - usage: No such option")
    reversed_ages = run("status", "--home", practice.home, "--warn-age", "8d", "--crit-age", "7d", code=3)
    assert "longer than --crit-age" in plugin_line(reversed_ages)
    as_json = run("status", "--home", practice.home, "--json", "--crit-age", "soon", code=3)
    report = json.loads(as_json.stdout)
    assert report["status"] == "UNKNOWN" and "soon" in report["problems"][0]
    assert "Usage" not in as_json.output  # click's usage text is not mixed into the plugin output
    unknown_option = json.loads(run("status", "--home", practice.home, "--json", "--bogus", code=3).stdout)
    assert unknown_option["status"] == "UNKNOWN" and "--bogus" in unknown_option["problems"][0]


def test_status_crash_is_unknown_with_one_line(practice: Practice, monkeypatch: pytest.MonkeyPatch) -> None:
    from continuity import status

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug\nwith a second line")

    # A fake bug: compute_status itself turns every error into UNKNOWN, so only a patched one can reach
    # the command's own safety net.
    monkeypatch.setattr(status, "compute_status", broken)
    result = run("status", "--home", practice.home, code=3)
    assert plugin_line(result) == "CONTINUITY UNKNOWN - status unknown - RuntimeError: a bug\\x0awith a second line"


def run_as_another_user(practice: Practice, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the command line as a user the home's modes apply to (the monitoring agent, say).

    As root, file modes do not apply: the command then runs in a user namespace without any mapping,
    where the kernel no longer lets root override them.
    """
    root = Path(__file__).resolve().parents[2]
    command = [sys.executable, "-c", "from continuity.cli import main; main()", *args]
    if os.geteuid() == 0:
        if shutil.which("unshare") is None:
            pytest.skip("running as root and no unshare command to drop root's override of file modes")
        command = ["unshare", "--user", *command]
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(command, capture_output=True, text=True, cwd=root, env=env)
    if os.geteuid() == 0 and done.returncode != 3 and "unshare" in done.stderr:
        pytest.skip(f"user namespaces are not allowed here: {done.stderr.strip()}")
    return done


@pytest.mark.parametrize("unreadable", ["home", "state"])
def test_status_run_by_a_user_who_cannot_read_the_home_is_unknown(practice: Practice, unreadable: str) -> None:
    # Before: a traceback on stderr, exit 1 (WARNING) and nothing on stdout.
    practice.publish(1, practice.tmp / "s.snap")
    run("pull", "--home", practice.home, practice.tmp / "s.snap")
    target = practice.home if unreadable == "home" else practice.home / "state.json"
    mode = target.stat().st_mode & 0o777
    target.chmod(0)
    try:
        done = run_as_another_user(practice, "status", "--home", str(practice.home))
    finally:
        target.chmod(mode)
    assert done.returncode == 3, done
    assert done.stdout.startswith("CONTINUITY UNKNOWN - status unknown - ") and done.stdout.count("\n") == 1
    assert "not readable" in done.stdout or "Permission denied" in done.stdout
    assert "Traceback" not in done.stderr
