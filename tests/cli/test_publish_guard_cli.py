"""A broken export never replaces good data, on the publisher side: `publisher publish` keeps a record of its
publications, proposes the next sequence (`--seq auto`) and refuses an export whose patient count dropped.

The appliance is a real one (init, trust, pull, status): after a week of broken nightly exports it still
serves the last good snapshot, and the next good export follows it without a gap in the sequence.
"""

from __future__ import annotations

import fcntl
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from continuity import synth
from continuity.cli import cli
from continuity.errors import ExportRefused, ShrinkRefused
from tests.transport_helpers import PASSPHRASE, use_weak_kdf

PRACTICE = "cabinet-garde"


@pytest.fixture(autouse=True)
def _weak_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    use_weak_kdf(monkeypatch)


def run(*args: object, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


class Night:
    """The publisher's machine and the practice's appliance, one nightly export after another."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.home = tmp / "home"
        self.keys = tmp / "publisher"
        self.good = tmp / "good-export"
        synth.write_practice(self.good, patients=60, seed=11)
        passphrase = tmp / "alice.pass"
        passphrase.write_text(PASSPHRASE + "\n")
        run("publisher", "keygen", "--out", self.keys)
        run("init", "--home", self.home, "--user", "alice", "--passphrase-file", passphrase)
        run("trust", "--home", self.home, self.keys / "publisher.pub")
        self.night = 0

    def publish(self, export: Path, *extra: object, seq: object = "auto", code: int = 0) -> tuple[Result, Path]:
        self.night += 1
        out = self.tmp / f"night-{self.night}.snap"
        result = run(
            "publisher", "publish", export, "--key", self.keys, "--recipient", self.home / "appliance.pub",
            "--practice", PRACTICE, "--seq", seq, "--out", out, *extra, code=code,
        )  # fmt: skip
        return result, out

    def pull(self, snapshot: Path) -> Result:
        return run("pull", "--home", self.home, snapshot)

    def status(self) -> dict[str, object]:
        return json.loads(run("status", "--home", self.home, "--json").stdout)  # type: ignore[no-any-return]

    def state(self) -> dict[str, object]:
        data = json.loads((self.keys / "publish-state.json").read_text(encoding="utf-8"))
        return data["practices"][PRACTICE]  # type: ignore[no-any-return]

    def smaller(self, patients: int) -> Path:
        """A consistent export of fewer patients (the platform exported only part of the practice)."""
        folder = self.tmp / f"only-{patients}"
        if not folder.exists():
            synth.write_practice(folder, patients=patients, seed=11)
        return folder

    def broken(self, name: str, keep_lines: int, *, cut_last: bool = True) -> Path:
        """The good export with its Patient file cut after ``keep_lines`` lines (mid-line when ``cut_last``)."""
        folder = self.tmp / name
        shutil.copytree(self.good, folder)
        patients = (folder / "Patient.ndjson").read_text(encoding="utf-8").splitlines(keepends=True)
        kept = "".join(patients[:keep_lines])
        if cut_last and keep_lines < len(patients):
            kept += patients[keep_lines][: len(patients[keep_lines]) // 2]
        (folder / "Patient.ndjson").write_text(kept, encoding="utf-8")
        return folder


def test_seven_nights_of_broken_exports_never_replace_the_good_snapshot(tmp_path: Path) -> None:
    night = Night(tmp_path)
    first, snapshot = night.publish(night.good)
    assert "sequence 1" in first.output
    night.pull(snapshot)
    good_state = night.state()
    assert good_state["sequence"] == 1 and good_state["counts"]["patient"] == 60  # type: ignore[index]

    empty = tmp_path / "empty-export"
    empty.mkdir()
    (empty / "log.ndjson").write_text('{"msg": "export failed: disk full"}\n')
    only_header = night.broken("cut-at-once", 0)
    broken = [
        (empty, ExportRefused.exit_code),  # nothing but the export's log
        (only_header, ExportRefused.exit_code),  # the Patient file cut in its first line: no patient at all
        (night.broken("cut", 30), ExportRefused.exit_code),  # cut in the middle: what refers to the rest dangles
        (night.smaller(30), ShrinkRefused.exit_code),  # half the patients, consistently
        (night.smaller(50), ShrinkRefused.exit_code),  # 50 of 60: a 17 % drop
        (night.smaller(53), ShrinkRefused.exit_code),  # 53 of 60: still more than 10 %
        (empty, ExportRefused.exit_code),
    ]
    for export, code in broken:  # a week of broken nights
        result, out = night.publish(export, code=code)
        assert not out.exists(), f"night {night.night} wrote {out}"
        assert night.state() == good_state
        assert night.status()["current"]["sequence"] == 1  # type: ignore[index]
        assert "publié" in result.output
    assert night.night == 8

    # The export is repaired: the next publication follows the last good one, with no gap.
    repaired, snapshot = night.publish(night.good)
    assert "sequence 2" in repaired.output
    assert "accepted snapshot 2" in night.pull(snapshot).output
    status = night.status()
    assert status["current"]["sequence"] == 2 and status["current"]["counts"]["patient"] == 60  # type: ignore[index]
    assert night.state()["sequence"] == 2


def test_a_small_drop_passes_and_a_larger_one_needs_allow_shrink(tmp_path: Path) -> None:
    night = Night(tmp_path)
    night.publish(night.good)
    smaller, out = night.publish(night.smaller(55))  # 55 of 60: 8 % < 10 %
    assert out.exists() and "sequence 2" in smaller.output
    refused, out = night.publish(night.smaller(40), code=ShrinkRefused.exit_code)
    assert "40 patients against 55 in publication 2" in refused.output and not out.exists()
    loose, out = night.publish(night.smaller(40), "--max-shrink", "30")
    assert "sequence 3" in loose.output
    forced, out = night.publish(night.smaller(25), "--allow-shrink")
    assert "sequence 4" in forced.output and night.state()["counts"]["patient"] == 25  # type: ignore[index]


def test_an_explicit_sequence_may_not_reuse_one_and_a_damaged_record_stops_publishing(tmp_path: Path) -> None:
    night = Night(tmp_path)
    night.publish(night.good, seq=5)
    reused, out = night.publish(night.good, seq=5, code=ExportRefused.exit_code)
    assert "sequence 5 is not greater than the last one published" in reused.output and not out.exists()
    following, _ = night.publish(night.good)
    assert "sequence 6" in following.output

    (night.keys / "publish-state.json").write_text('{"format": "continuity-publisher-state", "practices": {"x": 1}}')
    damaged, out = night.publish(night.good, code=ExportRefused.exit_code)
    assert "registre des publications" in damaged.output and not out.exists()


def test_the_import_summary_travels_in_the_signed_header(tmp_path: Path) -> None:
    night = Night(tmp_path)
    export = night.broken("flagged", 60)
    with (export / "MedicationRequest.ndjson").open("a", encoding="utf-8") as handle:
        line = {
            "resourceType": "MedicationStatement", "id": "ms-unknown", "status": "unknown",
            "medicationCodeableConcept": {"text": "insuline glargine"},
            "subject": {"reference": "Patient/pat-000030"},
        }  # fmt: skip
        handle.write(json.dumps(line) + "\n")
    _, snapshot = night.publish(export)
    night.pull(snapshot)
    summary = night.status()["current"]["import"]  # type: ignore[index]
    assert summary["flag.treatment.status-unknown"] == 3  # the showcase's two, and this one
    assert summary["read"] >= summary["kept"] > 0
    assert not any(name.startswith("pat-") or "glargine" in name for name in summary)  # counts, no patient data
    text = run("status", "--home", night.home).stdout
    assert "  export        3 traitements au statut inconnu" in text
    assert "  export        1 ligne de traitement non identifiée" in text  # the showcase's retired product


def test_two_publications_at_once_cannot_take_the_same_sequence(tmp_path: Path) -> None:
    night = Night(tmp_path)
    night.publish(night.good)
    lock = night.keys / ".publish-state.json.lock"
    with lock.open("a") as held:  # a slow publication still running when the next cron starts
        fcntl.flock(held, fcntl.LOCK_EX)
        overlapping, out = night.publish(night.good, code=ExportRefused.exit_code)
        fcntl.flock(held, fcntl.LOCK_UN)
    assert "Une autre publication est en cours" in overlapping.output and not out.exists()
    after, _ = night.publish(night.good)
    assert "sequence 2" in after.output
