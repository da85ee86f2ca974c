"""The journal: hash chain, months, sealed details, checkpoints, retention, write failures."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import multiprocessing
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import nacl.public
import nacl.signing
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from continuity import journal as journal_module
from continuity import snapshot_build
from continuity.errors import JournalBroken, JournalError
from continuity.ins import with_check_key
from continuity.journal import Action, Journal, verify_journal
from tests.unit.journal_helpers import (
    Appliance,
    Clock,
    files_bytes,
    make_appliance,
    make_prescription,
    patient_markers,
    write_key_files,
)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fixed = Clock(dt.datetime(2026, 11, 28, 8, 0, tzinfo=dt.UTC))
    monkeypatch.setattr(journal_module, "_now", fixed)
    return fixed


@pytest.fixture
def appliance(tmp_path: Path) -> Appliance:
    return make_appliance(tmp_path / "home")


def fill(journal: Journal, count: int, *, user: str = "dr.martin") -> None:
    for number in range(count):
        journal.append(user=user, action=Action.VIEW_PATIENT, patient_id=f"pat-{number:04d}", snapshot_seq=3)


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def kinds(home: Path, verify_key: nacl.signing.VerifyKey | None = None) -> list[str]:
    return [problem.kind for problem in verify_journal(home, verify_key).problems]


# --- writing and the chain -------------------------------------------------------------------------


def test_append_chains_entries_in_canonical_form(appliance: Appliance, clock: Clock) -> None:
    journal = appliance.journal()
    first = journal.append(user="dr.martin", action=Action.UNLOCK, details={"method": "passphrase"})
    second = journal.append(user="dr.martin", action="view_patient", patient_id="pat-0001", snapshot_seq=7)

    assert (first.index, second.index) == (0, 1)
    assert first.prev_hash == journal_module.GENESIS_HASH
    assert second.prev_hash == first.hash
    path = appliance.home / "journal" / "2026-11.jsonl"
    raw = lines_of(path)
    assert raw == [first.to_line(), second.to_line()]
    parsed = json.loads(raw[1])
    assert parsed["patient"] == "pat-0001"
    assert parsed["snapshot_seq"] == 7
    assert parsed["ts"].endswith("+00:00")
    assert b" " not in raw[0]
    assert b" " not in raw[1]
    assert journal_module.JournalEntry.from_line(raw[1]) == second
    assert list(journal.entries()) == [first, second]
    report = verify_journal(appliance.home)
    assert report.ok
    assert report.entries == 2
    assert report.head == second.hash


def test_months_chain_to_each_other(appliance: Appliance, clock: Clock) -> None:
    journal = appliance.journal()
    clock.set(2026, 10, 31)
    fill(journal, 2)
    clock.set(2026, 11, 1)
    fill(journal, 2)
    october, november = (appliance.home / "journal" / name for name in ("2026-10.jsonl", "2026-11.jsonl"))
    last_october = json.loads(lines_of(october)[-1])
    first_november = json.loads(lines_of(november)[0])
    assert first_november["prev"] == last_october["hash"]
    assert first_november["index"] == 2
    assert verify_journal(appliance.home).ok


def test_clock_set_back_never_writes_into_an_older_month(appliance: Appliance, clock: Clock) -> None:
    journal = appliance.journal()
    clock.set(2026, 11, 2)
    fill(journal, 1)
    clock.set(2026, 9, 2)
    fill(journal, 1)
    assert [p.name for p in journal.month_files()] == ["2026-11.jsonl"]
    report = verify_journal(appliance.home)
    assert report.ok
    assert report.notes_fr


def test_refuses_patient_data_in_clear_fields(appliance: Appliance) -> None:
    journal = appliance.journal()
    with pytest.raises(ValueError, match="sealed"):
        journal.append(user="dr.martin", action="view_patient", details={"birth_name": "NDIAYE"})
    with pytest.raises(ValueError, match="pseudonymous"):
        journal.append(user="dr.martin", action="view_patient", patient_id=with_check_key("2500375123456"))
    with pytest.raises(ValueError, match="pseudonymous"):
        journal.append(user="dr.martin", action="view_patient", patient_id="NDIAYE Aminata")
    with pytest.raises(ValueError, match="action"):
        journal.append(user="dr.martin", action="View Patient")
    assert not (appliance.home / "journal" / "2026-11.jsonl").exists()


def test_sealed_details_open_only_with_the_appliance_key(appliance: Appliance, clock: Clock) -> None:
    journal = appliance.journal()
    prescription = make_prescription(1)
    payload = journal_module.prescription_payload(prescription, pdf_sha256="ab" * 32)
    entry = journal.append(
        user="dr.martin",
        action=Action.PRINT_PRESCRIPTION,
        patient_id=prescription.patient.id,
        snapshot_seq=3,
        sealed=payload,
    )
    stored = next(iter(journal.entries()))
    assert stored.sealed is not None
    assert stored.sealed == entry.sealed
    opened = journal_module.read_prescription_payload(stored.open_sealed(appliance.box_key))
    assert opened == payload
    assert opened["patient"]["birth_name"] == prescription.patient.birth_name
    assert opened["lines"][0]["non_substitution"] == "MTE"
    with pytest.raises(JournalError):
        stored.open_sealed(nacl.public.PrivateKey.generate())


def test_no_patient_data_in_clear_on_disk(appliance: Appliance, clock: Clock) -> None:
    journal = appliance.journal()
    prescriptions = [make_prescription(number) for number in range(1, 7)]
    for prescription in prescriptions:
        journal.append(user="dr.martin", action="view_patient", patient_id=prescription.patient.id, snapshot_seq=1)
        journal.append(
            user="dr.martin",
            action="print_prescription",
            patient_id=prescription.patient.id,
            snapshot_seq=1,
            sealed=journal_module.prescription_payload(prescription, pdf_sha256="cd" * 32),
        )
    journal.checkpoint(appliance.signing_key, "dr.martin", box_key=appliance.box_key)
    scanned = 0
    for path, data in files_bytes(appliance.home):
        scanned += 1
        text = data.decode("utf-8", errors="replace").casefold()
        for prescription in prescriptions:
            for marker in [*patient_markers(prescription.patient), "lévothyroxine", "paracétamol"]:
                assert marker.casefold() not in text, f"{marker} in clear in {path}"
    assert scanned >= 3


def test_prescription_payload_shape_is_checked(appliance: Appliance) -> None:
    payload = journal_module.prescription_payload(make_prescription(2), pdf_sha256="00" * 32)
    broken = json.loads(json.dumps(payload))
    del broken["lines"][0]["posology"]
    with pytest.raises(JournalError, match="posology"):
        journal_module.read_prescription_payload(broken)
    wrong_type = json.loads(json.dumps(payload))
    wrong_type["lines"][0]["renewals"] = True
    with pytest.raises(JournalError, match="renewals"):
        journal_module.read_prescription_payload(wrong_type)


def test_public_key_read_from_home(appliance: Appliance, tmp_path: Path) -> None:
    assert bytes(appliance.journal().public_key) == bytes(appliance.box_key.public_key)
    with pytest.raises(JournalError):
        Journal(tmp_path / "nowhere").append(user="system", action="pull_accepted", sealed={"x": 1})


# --- tampering -------------------------------------------------------------------------------------


@pytest.fixture
def filled(appliance: Appliance, clock: Clock) -> Path:
    """Twelve entries in November with a checkpoint after the sixth; returns the month file."""
    journal = appliance.journal()
    fill(journal, 6)
    journal.checkpoint(appliance.signing_key, "dr.martin", box_key=appliance.box_key)
    fill(journal, 5)
    assert verify_journal(appliance.home).ok
    return appliance.home / "journal" / "2026-11.jsonl"


def test_flipping_a_byte_is_caught_where_it_happened(appliance: Appliance, filled: Path) -> None:
    data = bytearray(filled.read_bytes())
    lines = lines_of(filled)
    offset = sum(len(line) for line in lines[:3]) + lines[3].index(b"dr.martin")
    data[offset] ^= 0x01  # d -> e
    filled.write_bytes(bytes(data))
    report = verify_journal(appliance.home)
    assert not report.ok
    assert (report.problems[0].line, report.problems[0].index, report.problems[0].kind) == (4, 3, "edited")
    assert "ligne 4" in report.problems[0].where()


def test_rehashed_edit_breaks_the_next_link(appliance: Appliance, filled: Path) -> None:
    lines = lines_of(filled)
    entry = journal_module.JournalEntry.from_line(lines[2])
    forged = journal_module.dataclasses.replace(entry, user="dr.other")
    forged = journal_module.dataclasses.replace(forged, hash=forged.computed_hash())
    lines[2] = forged.to_line()
    filled.write_bytes(b"".join(lines))
    problems = verify_journal(appliance.home).problems
    assert [(p.line, p.kind) for p in problems][:1] == [(4, "edited")]


def test_rewriting_the_whole_chain_is_caught_by_the_checkpoint(appliance: Appliance, filled: Path) -> None:
    lines = lines_of(filled)
    entries = [journal_module.JournalEntry.from_line(line) for line in lines]
    previous = journal_module.GENESIS_HASH
    rewritten = []
    for entry in entries:
        changed = journal_module.dataclasses.replace(
            entry, prev_hash=previous, user="intrus" if entry.index == 1 else entry.user
        )
        changed = journal_module.dataclasses.replace(changed, hash=changed.computed_hash())
        previous = changed.hash
        rewritten.append(changed.to_line())
    filled.write_bytes(b"".join(rewritten))
    problems = verify_journal(appliance.home).problems
    assert (problems[0].kind, problems[0].index) == ("checkpoint", 6)
    assert {p.kind for p in problems} == {"checkpoint", "head"}  # journal.head names the real last entry


def test_deleting_an_entry_is_caught(appliance: Appliance, filled: Path) -> None:
    lines = lines_of(filled)
    del lines[8]
    filled.write_bytes(b"".join(lines))
    problems = verify_journal(appliance.home).problems
    assert problems[0].kind == "deleted"
    assert problems[0].line == 9
    assert "n° 8" in problems[0].message_fr


def test_deleting_the_last_entry_is_caught_by_the_paper_checkpoint(appliance: Appliance, filled: Path) -> None:
    head = appliance.journal().head()
    assert head is not None
    paper = (head.index + 1, head.hash)
    assert verify_journal(appliance.home, paper=paper).ok
    filled.write_bytes(b"".join(lines_of(filled)[:-1]))
    assert kinds_with_paper(appliance.home, paper) == ["head", "paper"]  # journal.head sees it too


def kinds_with_paper(home: Path, paper: tuple[int, str]) -> list[str]:
    return [problem.kind for problem in verify_journal(home, paper=paper).problems]


def test_swapping_two_entries_is_caught(appliance: Appliance, filled: Path) -> None:
    lines = lines_of(filled)
    lines[3], lines[4] = lines[4], lines[3]
    filled.write_bytes(b"".join(lines))
    problems = verify_journal(appliance.home).problems
    assert problems
    assert all(p.kind == "reordered" for p in problems)
    assert problems[0].line == 4


def test_truncating_mid_line_is_caught(appliance: Appliance, filled: Path) -> None:
    data = filled.read_bytes()
    filled.write_bytes(data[: len(data) - 40])
    problems = verify_journal(appliance.home).problems
    assert [(p.kind, p.line) for p in problems] == [("truncated", 12), ("head", None)]


def test_replacing_a_whole_month_is_caught(appliance: Appliance, clock: Clock, tmp_path: Path) -> None:
    journal = appliance.journal()
    clock.set(2026, 9, 3)
    fill(journal, 3)
    clock.set(2026, 10, 3)
    fill(journal, 3)
    clock.set(2026, 11, 3)
    fill(journal, 3)
    # The same activity on another (or the same) appliance: a well-formed month, not this one.
    other = make_appliance(tmp_path / "other")
    clock.set(2026, 9, 3)
    fill(other.journal(), 3)
    clock.set(2026, 10, 3)
    fill(other.journal(), 3, user="dr.other")
    october = appliance.home / "journal" / "2026-10.jsonl"
    october.write_bytes((other.home / "journal" / "2026-10.jsonl").read_bytes())
    problems = verify_journal(appliance.home).problems
    assert ("2026-11.jsonl", 1, "replaced") in [(p.file, p.line, p.kind) for p in problems]


def test_checkpoint_from_another_appliance_is_caught(appliance: Appliance, filled: Path) -> None:
    intruder = nacl.signing.SigningKey.generate()
    appliance.journal().checkpoint(intruder, "dr.martin", box_key=appliance.box_key)
    problems = verify_journal(appliance.home).problems
    assert [p.kind for p in problems] == ["checkpoint"]
    assert "autre poste" in problems[0].message_fr
    assert journal_module.key_fingerprint(intruder.verify_key) in problems[0].message_fr


def test_a_forged_signature_is_caught(appliance: Appliance, filled: Path) -> None:
    lines = lines_of(filled)
    entry = journal_module.JournalEntry.from_line(lines[6])
    assert entry.action == "checkpoint"
    details = dict(entry.details)
    details["signature"] = "00" * 64
    forged = journal_module.dataclasses.replace(entry, details=details)
    forged = journal_module.dataclasses.replace(forged, hash=forged.computed_hash())
    lines[6] = forged.to_line()
    filled.write_bytes(b"".join(lines))
    assert "checkpoint" in kinds(appliance.home)


def test_checkpoint_counts_and_text(appliance: Appliance, filled: Path) -> None:
    text = journal_module.checkpoint_text(appliance.home)
    assert re.search(r"Nombre d'entrées +: 6\n", text)
    assert journal_module.key_fingerprint(appliance.signing_key.verify_key) in text
    report = verify_journal(appliance.home)
    assert report.checkpoints == 1
    assert report.last_checkpoint_count == 6
    assert report.unsigned_tail == 5


def test_paper_copy_skips_a_checkpoint_of_another_appliance(appliance: Appliance, filled: Path) -> None:
    appliance.journal().checkpoint(nacl.signing.SigningKey.generate(), "dr.martin", box_key=appliance.box_key)
    assert journal_module.last_signed_checkpoint(appliance.home).index == 6


def test_missing_verify_key_is_said(appliance: Appliance, filled: Path) -> None:
    (appliance.home / "appliance.sign.pub").unlink()
    report = verify_journal(appliance.home)
    assert report.ok
    assert any("non vérifiés" in note for note in report.notes_fr)


# --- retention -------------------------------------------------------------------------------------


def fill_months(appliance: Appliance, clock: Clock, months: list[tuple[int, int]]) -> None:
    journal = appliance.journal()
    for year, month in months:
        clock.set(year, month, 5)
        fill(journal, 2)


def test_retention_keeps_what_remains_verifiable(appliance: Appliance, clock: Clock) -> None:
    months = [(2025, m) for m in range(6, 13)] + [(2026, m) for m in range(1, 12)]
    fill_months(appliance, clock, months)
    journal = appliance.journal()
    clock.set(2026, 11, 20)
    deleted = journal.apply_retention(12, today=dt.date(2026, 11, 20))
    assert deleted == [f"2025-{m:02d}.jsonl" for m in range(6, 11)]
    assert journal.month_files()[0].name == "2025-11.jsonl"
    report = verify_journal(appliance.home)
    assert report.ok, report.problems
    assert report.first_index == 10
    # A second pass later on still verifies (the newest retention entry is the anchor).
    clock.set(2027, 2, 1)
    fill(journal, 1)
    assert journal.apply_retention(12, today=dt.date(2027, 2, 1)) == ["2025-11.jsonl", "2025-12.jsonl", "2026-01.jsonl"]
    assert verify_journal(appliance.home).ok


def test_retention_never_deletes_a_broken_journal(appliance: Appliance, clock: Clock) -> None:
    fill_months(appliance, clock, [(2025, 9), (2026, 10), (2026, 11)])
    path = appliance.home / "journal" / "2026-10.jsonl"
    path.write_bytes(path.read_bytes().replace(b"dr.martin", b"dr.autre!", 1))
    with pytest.raises(JournalBroken):
        appliance.journal().apply_retention(12, today=dt.date(2026, 11, 20))
    assert (appliance.home / "journal" / "2025-09.jsonl").exists()


def test_deleting_the_oldest_month_by_hand_is_caught(appliance: Appliance, clock: Clock) -> None:
    fill_months(appliance, clock, [(2026, 9), (2026, 10), (2026, 11)])
    (appliance.home / "journal" / "2026-09.jsonl").unlink()
    problems = verify_journal(appliance.home).problems
    assert [(p.file, p.kind) for p in problems] == [("2026-10.jsonl", "deleted")]


def test_deleting_more_than_the_purge_recorded_is_caught(appliance: Appliance, clock: Clock) -> None:
    fill_months(appliance, clock, [(2025, 9), (2025, 10), (2026, 10), (2026, 11)])
    appliance.journal().apply_retention(12, today=dt.date(2026, 11, 20))
    (appliance.home / "journal" / "2026-10.jsonl").unlink()
    assert kinds(appliance.home) == ["replaced"]


# --- torn lines, concurrency -----------------------------------------------------------------------


def test_a_line_torn_by_a_power_cut_is_set_aside_and_journaled(appliance: Appliance, filled: Path) -> None:
    with filled.open("ab") as handle:
        handle.write(b'{"action":"view_pat')
    assert kinds(appliance.home) == ["truncated"]
    entry = appliance.journal().append(user="dr.martin", action="view_patient", patient_id="pat-0009")
    assert verify_journal(appliance.home).ok
    entries = list(appliance.journal().entries())
    assert entries[-2].action == "journal_repaired"
    assert entries[-2].details["torn_bytes"] == 19
    assert entries[-1] == entry
    aside = list(filled.parent.glob("2026-11.jsonl.torn-*"))
    assert len(aside) == 1
    assert aside[0].read_bytes() == b'{"action":"view_pat'


def _append_many(home: str, worker: int) -> None:
    journal = Journal(Path(home))
    for number in range(25):
        journal.append(user=f"worker{worker}", action="view_patient", patient_id=f"p-{worker}-{number}")


def test_a_fully_torn_month_file_is_set_aside(appliance: Appliance, clock: Clock) -> None:
    clock.set(2026, 10, 30)
    fill(appliance.journal(), 2)
    november = appliance.home / "journal" / "2026-11.jsonl"
    november.write_bytes(b'{"action":"vi')
    clock.set(2026, 11, 2)
    appliance.journal().append(user="dr.martin", action="lock")
    assert verify_journal(appliance.home).ok
    assert [entry.action for entry in appliance.journal().entries()][-2:] == ["journal_repaired", "lock"]


def test_threads_share_one_journal(appliance: Appliance) -> None:
    journal = appliance.journal()

    def work(worker: int) -> None:
        for number in range(20):
            journal.append(user=f"t{worker}", action="view_patient", patient_id=f"p-{worker}-{number}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = verify_journal(appliance.home)
    assert report.ok
    assert report.entries == 80


def test_concurrent_writers_keep_one_chain(appliance: Appliance) -> None:
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_append_many, args=(str(appliance.home), n)) for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0
    report = verify_journal(appliance.home)
    assert report.ok
    assert report.entries == 100


def test_a_broken_last_line_stops_appends(appliance: Appliance, filled: Path) -> None:
    with filled.open("ab") as handle:
        handle.write(b"not json\n")
    with pytest.raises(JournalError, match="last line"):
        appliance.journal().append(user="dr.martin", action="lock")


# --- write failures --------------------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(target: Path, *options: str) -> Iterator[Path]:
    """Mount a small tmpfs (needs root and CAP_SYS_ADMIN: tests run as root, chmod would not stop them)."""
    target.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(target)],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.decode().strip()}): write failures not simulated")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def test_read_only_journal_raises_journal_error(tmp_path: Path, clock: Clock) -> None:
    keys = make_appliance(tmp_path / "keys")
    with tmpfs(tmp_path / "home", "size=64k") as home:
        write_key_files(home, keys.box_key.public_key, keys.signing_key.verify_key)
        journal = Journal(home)
        fill(journal, 2)
        subprocess.run(["mount", "-o", "remount,ro", str(home)], check=True)
        with pytest.raises(JournalError) as raised:
            journal.append(user="dr.martin", action="view_patient", patient_id="pat-0001")
        assert "protégé en écriture" in raised.value.message_fr
        report = verify_journal(home)
        assert report.ok
        assert report.entries == 2


def test_read_only_home_without_journal_raises_journal_error(tmp_path: Path) -> None:
    keys = make_appliance(tmp_path / "keys")
    with tmpfs(tmp_path / "home", "size=64k") as home:
        write_key_files(home, keys.box_key.public_key, keys.signing_key.verify_key)
        subprocess.run(["mount", "-o", "remount,ro", str(home)], check=True)
        with pytest.raises(JournalError):
            Journal(home).append(user="dr.martin", action="unlock")


def test_disk_full_raises_journal_error_and_leaves_no_half_line(tmp_path: Path, clock: Clock) -> None:
    keys = make_appliance(tmp_path / "keys")
    with tmpfs(tmp_path / "home", "size=48k") as home:
        write_key_files(home, keys.box_key.public_key, keys.signing_key.verify_key)
        journal = Journal(home)
        bulky = {"blob": base64.b64encode(bytes(range(256)) * 12).decode()}
        written = 0
        failure: JournalError | None = None
        for _ in range(1000):
            try:
                journal.append(user="dr.martin", action="print_summary", patient_id="pat-0001", sealed=bulky)
            except JournalError as error:
                failure = error
                break
            written += 1
        assert failure is not None
        assert "disque est plein" in failure.message_fr
        assert written > 3
        report = verify_journal(home)
        assert report.ok, report.problems
        assert report.entries == written
        assert all(line.endswith(b"\n") for _, data in files_bytes(home / "journal") for line in [data] if data)


# --- properties ------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
safe_keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10).filter(
    lambda key: key not in journal_module._FORBIDDEN_DETAIL_KEYS
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(details=st.dictionaries(safe_keys, json_values, max_size=4), sealed=st.dictionaries(st.text(), json_values))
def test_entries_round_trip(tmp_path: Path, details: dict[str, object], sealed: dict[str, object]) -> None:
    appliance = make_appliance(tmp_path / f"home-{len(list(tmp_path.iterdir()))}")
    journal = appliance.journal()
    entry = journal.append(user="dr.martin", action="view_patient", patient_id="p-1", details=details, sealed=sealed)
    (stored,) = journal.entries()
    assert stored == entry
    assert stored.details == details
    assert stored.open_sealed(appliance.box_key) == sealed
    assert verify_journal(appliance.home).ok


@pytest.fixture(scope="module")
def small_journal(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    appliance = make_appliance(tmp_path_factory.mktemp("flip") / "home")
    journal = appliance.journal()
    for number in range(4):
        journal.append(user="dr.martin", action="view_patient", patient_id=f"pat-{number}", sealed={"n": number})
    journal.checkpoint(appliance.signing_key, "dr.martin", box_key=appliance.box_key)
    journal.append(user="accueil", action="print_summary", patient_id="pat-9", details={"pages": 2})
    path = next((appliance.home / "journal").glob("*.jsonl"))
    return appliance.home, path.read_bytes()


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_any_flipped_bit_is_caught(small_journal: tuple[Path, bytes], data: st.DataObject) -> None:
    home, original = small_journal
    position = data.draw(st.integers(0, len(original) - 1))
    mask = data.draw(st.sampled_from([1, 2, 4, 8, 16, 32, 64, 128]))
    path = next((home / "journal").glob("*.jsonl"))
    flipped = bytearray(original)
    flipped[position] ^= mask
    path.write_bytes(bytes(flipped))
    try:
        assert not verify_journal(home).ok
    finally:
        path.write_bytes(original)


def test_a_session_shows_nothing_when_the_journal_cannot_be_written(tmp_path: Path) -> None:
    from continuity import snapshotdb
    from continuity.session import Session, fixed_clock
    from tests.factories import small_practice

    database = snapshot_build.build_from_records(small_practice(), tmp_path / "s.db").path
    with tmpfs(tmp_path / "home", "size=64k") as home:
        session = Session.from_database(
            snapshotdb.open_file(database),
            "accueil",
            Journal(home),
            clock=fixed_clock(dt.datetime(2026, 11, 28, 9, 0, tzinfo=dt.UTC)),
        )
        assert session.open_patient("pat-qual").summary.patient.birth_name == "ROUSSEAU"
        subprocess.run(["mount", "-o", "remount,ro", str(home)], check=True)
        with pytest.raises(JournalError) as raised:
            session.open_patient("pat-qual")
        assert "les dossiers patients ne sont pas affichés" in raised.value.message_fr
        assert verify_journal(home).ok
        session.lock()


def test_prescriptions_since_lists_only_this_patients_ordonnances_of_this_outage(tmp_path: Path) -> None:
    """What the patient screen shows as printed during the outage (not in the snapshot yet)."""
    from tests.unit.journal_helpers import make_appliance

    appliance = make_appliance(tmp_path / "home")
    book = Journal(appliance.home)
    book.append(user="dr.a", action="print_prescription", patient_id="pat-1", details={"line_count": 2})
    since = dt.datetime.now(dt.UTC)
    book.append(user="dr.b", action="print_prescription", patient_id="pat-1", details={"line_count": 3})
    book.append(user="dr.b", action="print_prescription", patient_id="pat-2", details={"line_count": 1})
    book.append(user="dr.b", action="drill_prescription", patient_id="pat-1", details={"line_count": 1})
    book.append(user="dr.b", action="view_patient", patient_id="pat-1")
    found = book.prescriptions_since("pat-1", since)
    assert [(entry.user, entry.details["line_count"]) for entry in found] == [("dr.b", 3)]
    assert book.prescriptions_since("pat-3", since) == []
