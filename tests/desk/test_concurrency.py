"""Five desks unlocked together in five processes, each searching, opening and printing: one valid chain."""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from continuity import demo, desk, keys
from continuity.journal import Action, Journal, verify_journal
from tests.desk.conftest import wait_for_printer_idle

DESKS = ("accueil", "salle-1", "salle-2", "salle-3", "salle-4")
ROUNDS = 12
# The same person may work at two desks: the demo's two logins take turns.
STAFF = [(demo.DEMO_USER, demo.DEMO_PASSPHRASE), (demo.DEMO_DOCTOR, demo.DEMO_DOCTOR_PASSPHRASE)]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(keys.WEAK_KDF_ENV, "1")
    practice = demo.prepare(tmp_path / "home", patients=300, today=dt.date.today())
    registry = desk.DeskRegistry(practice.home, executable=Path("/usr/bin/true"))
    for number, name in enumerate(DESKS):
        blob = bytes([0, 0, 0, 11]) + b"ssh-ed25519" + bytes([0, 0, 0, 32]) + bytes([number + 1]) * 32
        registry.add(name, desk.DeskKey("ssh-ed25519", blob), printer=os.environ.get("CONTINUITY_TEST_PRINTER"))
    return practice.home


def test_five_desks_at_once_keep_one_chain(home: Path, tmp_path: Path) -> None:
    before = sum(1 for _ in Journal(home).entries())
    go = tmp_path / "go"
    out = tmp_path / "prints"
    out.mkdir()
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, keys.WEAK_KDF_ENV: "1", "PYTHONPATH": str(root)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.desk.desk_worker", str(home), name, *STAFF[number % 2], str(go),
             str(ROUNDS), str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=root,
        )  # fmt: skip
        for number, name in enumerate(DESKS)
    ]
    go.touch()  # every process is waiting for this: they start together
    outputs = {}
    for worker in workers:
        stdout, stderr = worker.communicate(timeout=300)
        assert worker.returncode == 0, stderr
        result = json.loads(stdout.strip().splitlines()[-1])
        outputs[result["desk"]] = result
    wait_for_printer_idle()

    report = verify_journal(home)
    assert report.ok, report.problems
    assert report.unsigned_tail == 0
    entries = list(Journal(home).entries())[before:]
    assert [entry.index for entry in entries] == list(range(before, before + len(entries)))
    for number, name in enumerate(DESKS):
        mine = [entry for entry in entries if entry.desk == name]
        assert {entry.user for entry in mine} == {STAFF[number % 2][0]}
        actions = [entry.action for entry in mine if entry.action not in (Action.CHECKPOINT, "search")]
        opened = outputs[name]["opened"]
        prints = outputs[name]["printed"] + outputs[name]["saved"]
        assert actions[0] == Action.UNLOCK and actions[-1] == Action.LOCK
        assert actions.count(Action.VIEW_PATIENT) == len(opened) == ROUNDS
        assert actions.count(Action.PRINT_SUMMARY) == prints == len(range(0, ROUNDS, 3))
        assert [e.patient_id for e in mine if e.action == Action.VIEW_PATIENT] == opened
        assert sum(1 for entry in mine if entry.action == Action.CHECKPOINT) == 2  # at unlock and at lock
    # Really concurrent: the desks' entries interleave in the chain.
    switches = sum(1 for a, b in zip(entries, entries[1:], strict=False) if a.desk != b.desk)
    assert switches > len(DESKS) * 2, collections.Counter(entry.desk for entry in entries)
