"""Disk full, on a real small file system: a tmpfs of a few MB mounted in a private mount namespace.

`unshare --user --map-root-user --mount` gives the child its own mount table (nothing is mounted on
the machine itself, and no root is needed where user namespaces are allowed). The whole scenario
runs inside that child because the mount exists only there; it prints its observations as JSON.
Where namespaces are not allowed (some containers, hardened kernels) the test skips and says why.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.transport_helpers import NOW, Rig, make_rig, use_weak_kdf

ROOT = Path(__file__).resolve().parents[2]

_SCENARIO = r"""
import hashlib, json, os, shutil, subprocess, sys
from pathlib import Path

mount, template, new_snap = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
home = mount / "home"
shutil.copytree(template, home)
observed = {}

def fill(leave):
    # Fill the file system, then give back `leave` bytes (a busy log, a full download folder...).
    filler = mount / "filler"
    with open(filler, "ab") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    size = filler.stat().st_size
    os.truncate(filler, max(0, size - leave))

def cli(*args):
    done = subprocess.run(
        [sys.executable, "-c", "from continuity.cli import main; main()", *args, "--home", str(home)],
        capture_output=True, text=True,
    )
    return {"code": done.returncode, "stdout": done.stdout, "stderr": done.stderr}

def current_digest():
    state = json.loads((home / "state.json").read_text())
    stored = home / "store" / state["current"]["file"]
    return state["current"]["sequence"], hashlib.sha256(stored.read_bytes()).hexdigest()

observed["before"] = current_digest()
fill(leave=48 * 1024)
observed["pull_some_room"] = cli("pull", new_snap)
observed["status_some_room"] = cli("status", "--json")
observed["after_some_room"] = current_digest()
observed["staging_left"] = [p.name for p in (home / "store").iterdir() if p.name.startswith(".staging")]
fill(leave=0)
observed["pull_no_room"] = cli("pull", new_snap)
observed["status_no_room"] = cli("status", "--json")
observed["after_no_room"] = current_digest()
print(json.dumps(observed))
"""


def _namespaces_work() -> str | None:
    """None when a private tmpfs can be mounted here, else why not."""
    if shutil.which("unshare") is None:
        return "the unshare command is not installed"
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", 'mount -t tmpfs -o size=1m tmpfs "$0"', "/mnt"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        return f"cannot mount a private tmpfs here ({probe.stderr.strip() or probe.returncode})"
    return None


@pytest.fixture(autouse=True)
def _weak_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    use_weak_kdf(monkeypatch)


def test_pull_on_a_full_disk_is_a_clean_recorded_error(tmp_path: Path) -> None:
    why_not = _namespaces_work()
    if why_not:
        pytest.skip(why_not)
    rig: Rig = make_rig(tmp_path / "rig")
    rig.ingest(rig.make(1, created_at=NOW), now=NOW)
    # An incompressible payload of 600 KB: larger than what is left on the filled file system.
    noise = tmp_path / "noise.db"
    noise.write_bytes(os.urandom(600 * 1024))
    fresh = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=5)
    new_snap = rig.make(2, database=noise, created_at=fresh)
    mount = tmp_path / "small"
    mount.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [
            "unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
            'mount -t tmpfs -o size=3m tmpfs "$0" && exec "$@"', str(mount),
            sys.executable, "-c", _SCENARIO, str(mount), str(rig.home), str(new_snap),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    print(json.dumps(seen, indent=1))
    for key in ("pull_some_room", "pull_no_room"):
        pull = seen[key]
        assert pull["code"] == 16, pull
        assert "Traceback" not in pull["stderr"], pull["stderr"]
        assert "space" in pull["stderr"].lower(), pull["stderr"]
    assert seen["after_some_room"] == seen["before"] and seen["after_no_room"] == seen["before"]
    assert seen["staging_left"] == []
    for key in ("status_some_room", "status_no_room"):
        report = json.loads(seen[key]["stdout"])
        assert seen[key]["code"] >= 1 and report["status"] in ("WARNING", "CRITICAL"), report
        assert any("free in" in problem for problem in report["problems"]), report["problems"]
    some_room = json.loads(seen["status_some_room"]["stdout"])
    assert some_room["last_attempt"]["outcome"] == "error", some_room
    assert "space" in some_room["last_attempt"]["detail"].lower()
