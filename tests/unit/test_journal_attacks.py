"""The journal attacks of issue 13, each reproduced on a real appliance home, and what now reports them.

Before this work every one of these ended with `journal verify` saying "OK : journal intègre". The
home is a real one (keys, signed roster, a stored snapshot, sessions that unlock and lock), the
attacker edits the files as a person with access to the disk would, or uses what their own keyslot
gives them (the appliance secrets and the current checkpoint key).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
from pathlib import Path

import nacl.public
import nacl.signing
import pytest
from click.testing import CliRunner

from continuity import journal as journal_module
from continuity import keys, pull, staff
from continuity.cli import cli
from continuity.journal import Action, Journal, JournalEntry, verify_journal
from continuity.session import Session
from tests.transport_helpers import NOW, PASSPHRASE, USER, Rig, make_rig, use_weak_kdf

DOCTOR = "dr.martin"
DOCTOR_PASSPHRASE = "ordonnance urgente bleue"


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Rig:
    """An appliance with a stored snapshot and a journal of two sessions (views, a print, a pull)."""
    use_weak_kdf(monkeypatch)
    rig = make_rig(tmp_path)
    # The rig's home was enrolled through keys.py alone: journal its roster like `continuity init` would.
    alice = keys.open_member(rig.home, USER, PASSPHRASE)
    staff.add(rig.home, alice, DOCTOR, DOCTOR_PASSPHRASE, role=keys.Role.PRESCRIBER, rpps="10101010105")
    rig.ingest(rig.make(1))
    for user, passphrase in ((USER, PASSPHRASE), (DOCTOR, DOCTOR_PASSPHRASE)):
        session = Session.unlock(rig.home, user, passphrase)
        for result in session.search("", limit=3) or []:
            session.open_patient(result.patient.id)
        session.open_patient("pat-qual")
        session.record_print(Action.PRINT_SUMMARY, "pat-qual", details={"pdf_sha256": "ab" * 32})
        session.lock()
    report = verify_journal(rig.home)
    assert report.ok, report.problems
    assert report.checkpoints >= 4
    return rig


def month_file(rig: Rig) -> Path:
    files = sorted((rig.home / "journal").glob("*.jsonl"))
    assert len(files) == 1
    return files[0]


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def kinds(home: Path, **kwargs: object) -> set[str]:
    return {p.kind for p in verify_journal(home, **kwargs).problems}  # type: ignore[arg-type]


def rechain(entries: list[JournalEntry], start: str = journal_module.GENESIS_HASH) -> list[JournalEntry]:
    """What an attacker does after removing entries: renumber and re-hash everything after."""
    out, previous = [], start
    for number, entry in enumerate(entries):
        changed = dataclasses.replace(entry, index=number if start == journal_module.GENESIS_HASH else entry.index,
                                      prev_hash=previous)  # fmt: skip
        changed = dataclasses.replace(changed, hash=changed.computed_hash())
        out.append(changed)
        previous = changed.hash
    return out


def test_deleting_the_last_entries_past_a_signed_checkpoint_is_reported(rig: Rig) -> None:
    path = month_file(rig)
    kept = lines(path)
    last_checkpoint = max(i for i, line in enumerate(kept) if b'"action":"checkpoint"' in line)
    path.write_bytes(b"".join(kept[: last_checkpoint - 3]))  # the last session's end and its checkpoint
    report = verify_journal(rig.home)
    assert {"head", "checkpoint"} <= {p.kind for p in report.problems}
    assert any("supprimé" in p.message_fr for p in report.problems)


def test_truncating_back_to_any_entry_is_reported(rig: Rig) -> None:
    path = month_file(rig)
    for keep in (1, 5, len(lines(path)) - 1):
        original = path.read_bytes()
        path.write_bytes(b"".join(lines(path)[:keep]))
        assert "head" in kinds(rig.home), keep
        path.write_bytes(original)
    assert verify_journal(rig.home).ok


def test_deleting_the_newest_month_is_reported(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    # A session in the next month, then that month's file is deleted.
    monkeypatch.setattr(journal_module, "_now", lambda: dt.datetime.now(dt.UTC) + dt.timedelta(days=40))
    session = Session.unlock(rig.home, USER, PASSPHRASE)
    session.open_patient("pat-qual")
    session.lock()
    newest = sorted((rig.home / "journal").glob("*.jsonl"))[-1]
    newest.unlink()
    assert {"head", "checkpoint"} <= kinds(rig.home)


def test_deleting_every_month_file_is_reported(rig: Rig) -> None:
    for path in (rig.home / "journal").glob("*.jsonl"):
        path.unlink()
    report = verify_journal(rig.home)
    assert not report.ok and report.entries == 0
    assert "head" in {p.kind for p in report.problems}
    # and the head record deleted as well: the signed staff roster says the appliance had a journal
    (rig.home / journal_module.HEAD_FILE).unlink()
    assert not verify_journal(rig.home).ok


def test_the_export_of_a_journal_whose_months_were_deleted_says_so(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONTINUITY_HOME", raising=False)
    for path in (rig.home / "journal").glob("*.jsonl"):
        path.unlink()
    passphrase = rig.tmp / "doctor.pass"
    passphrase.write_text(DOCTOR_PASSPHRASE + "\n")
    result = CliRunner().invoke(cli, ["journal", "export", "--home", str(rig.home), "--user", DOCTOR,
                                      "--passphrase-file", str(passphrase), "--since", "2020-01-01",
                                      "--out", str(rig.tmp / "export"), "--no-pdf"])  # fmt: skip
    assert "journal rompu" in result.stderr
    verify = CliRunner().invoke(cli, ["journal", "verify", "--home", str(rig.home)])
    assert verify.exit_code == 11 and "JOURNAL ROMPU" in verify.stdout


def _months(rig: Rig, monkeypatch: pytest.MonkeyPatch, starts: list[dt.datetime]) -> Journal:
    moments = iter([])

    def now() -> dt.datetime:
        return next(moments)

    journal = Journal(rig.home)
    for start in starts:
        moments = iter(start + dt.timedelta(seconds=n) for n in range(100))
        monkeypatch.setattr(journal_module, "_now", now)
        journal.append(user="dr.martin", action=Action.VIEW_PATIENT, patient_id="pat-qual")
        journal.append(user="dr.martin", action=Action.VIEW_PATIENT, patient_id="pat-prov")
    return journal


def test_deleting_the_oldest_month_with_a_forged_retention_entry_is_reported(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    today = dt.datetime.now(dt.UTC)
    journal = _months(rig, monkeypatch, [today + dt.timedelta(days=31 * k) for k in (1, 2)])
    monkeypatch.setattr(journal_module, "_now", lambda: today + dt.timedelta(days=70))
    files = journal.month_files()
    oldest = files[0]
    last_deleted = JournalEntry.from_line(lines(oldest)[-1])
    oldest.unlink()
    # The forged purge, appended by hand: no key is needed to extend a hash chain.
    forged_details = {
        "deleted": [oldest.name], "retention_months": 12, "anchor_index": last_deleted.index,
        "anchor_hash": last_deleted.hash, "anchor_entry": last_deleted.to_line().decode().rstrip("\n"),
    }  # fmt: skip
    journal.append(user="system", action=Action.RETENTION, details=forged_details)
    problems = verify_journal(rig.home).problems
    assert problems[0].kind == "retention" and "trop récents" in problems[0].message_fr
    # (the sessions' checkpoints were in that month: the checkpoint key file misses them too)
    # Without the proof of what was deleted, or with a period under the minimum, it is refused too.
    for damage in ({"anchor_entry": "{}"}, {"retention_months": 1}):
        journal.append(user="system", action=Action.RETENTION, details={**forged_details, **damage})
        assert "retention" in kinds(rig.home)


def test_a_due_purge_still_verifies(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    today = dt.datetime.now(dt.UTC)
    journal = _months(rig, monkeypatch, [today + dt.timedelta(days=31 * k) for k in (1, 14, 15)])
    later = today + dt.timedelta(days=31 * 15 + 3)
    monkeypatch.setattr(journal_module, "_now", lambda: later)
    deleted = journal.apply_retention(12, today=later.date())
    assert deleted
    report = verify_journal(rig.home, now=later)
    assert report.ok, report.problems


def test_a_staff_member_cannot_remove_entries_and_re_sign_the_checkpoints(rig: Rig) -> None:
    """Before: every keyslot released the checkpoint signing key; rewriting and re-signing passed."""
    insider = keys.open_member(rig.home, USER, PASSPHRASE).secrets
    state = json.loads((rig.home / journal_module.CHECKPOINT_KEY_FILE).read_text())
    forward = nacl.signing.SigningKey(
        nacl.public.SealedBox(insider.box_key).decrypt(base64.b64decode(state["sealed_seed"]))
    )  # the best an insider can get: the key of the NEXT checkpoint
    path = month_file(rig)
    entries = [JournalEntry.from_line(line) for line in lines(path)]
    victim = next(e for e in entries if e.action == "view_patient" and e.user == DOCTOR)
    kept = [e for e in entries if e is not victim]
    for strategy in ("current_key", "new_chain"):
        rewritten, previous, expected_key = [], journal_module.GENESIS_HASH, None
        for number, entry in enumerate(kept):
            changed = dataclasses.replace(entry, index=number, prev_hash=previous)
            if entry.action == "checkpoint":
                generation = 0 if strategy == "new_chain" else entry.details["generation"]
                key = nacl.signing.SigningKey.generate() if strategy == "new_chain" else forward
                following = nacl.signing.SigningKey.generate()
                message = journal_module.checkpoint_message(
                    number, previous, generation, key.verify_key, following.verify_key, insider.signing_key.verify_key
                )
                changed = dataclasses.replace(changed, details={
                    "count": number, "head": previous, "generation": generation,
                    "key": bytes(key.verify_key).hex(), "next": bytes(following.verify_key).hex(),
                    "appliance_key": bytes(insider.signing_key.verify_key).hex(),
                    "signature": key.sign(message).signature.hex(),
                    "appliance_signature": insider.signing_key.sign(message).signature.hex(),
                })  # fmt: skip
                expected_key = following
            changed = dataclasses.replace(changed, hash=changed.computed_hash())
            rewritten.append(changed)
            previous = changed.hash
        assert expected_key is not None
        path.write_bytes(b"".join(e.to_line() for e in rewritten))
        # the local head record rewritten too, as a careful attacker would
        last = rewritten[-1]
        (rig.home / journal_module.HEAD_FILE).unlink()  # rewritten by one who knows its format
        journal_module.write_head_record(rig.home, last)
        problems = verify_journal(rig.home).problems
        assert "checkpoint" in {p.kind for p in problems}, strategy
        assert problems[0].index is not None and problems[0].index < victim.index + 3


def test_removing_unsigned_unlock_failed_entries_is_reported(rig: Rig) -> None:
    with pytest.raises(keys.AuthenticationError):  # type: ignore[attr-defined]
        Session.unlock(rig.home, DOCTOR, "pas la bonne phrase du tout")
    path = month_file(rig)
    kept = lines(path)
    assert b"unlock_failed" in kept[-1]
    path.write_bytes(b"".join(kept[:-1]))  # no key needed: it is the last line
    assert "head" in kinds(rig.home)
    path.write_bytes(b"".join(kept))
    # once a session has unlocked after it, the entry is under a forward-signed checkpoint
    Session.unlock(rig.home, USER, PASSPHRASE).lock()
    entries = [JournalEntry.from_line(line) for line in lines(path)]
    failed = next(i for i, e in enumerate(entries) if e.action == "unlock_failed")
    rechained = rechain(entries[:failed] + entries[failed + 1 :])
    path.write_bytes(b"".join(e.to_line() for e in rechained))
    assert "checkpoint" in kinds(rig.home)


def test_a_torn_last_line_is_not_silently_repaired_by_the_next_pull(rig: Rig) -> None:
    path = month_file(rig)
    data = path.read_bytes()
    cut = data[: len(data) - 200]  # the last entries gone, the file ends mid-line
    path.write_bytes(cut)
    assert "truncated" in kinds(rig.home)
    pull.pull(rig.store, str(rig.make(2)), now=NOW)  # the unattended job writes the next entries
    with path.open("rb") as handle:
        assert not handle.read().endswith(cut[-50:])  # the torn bytes were set aside...
    report = verify_journal(rig.home)
    assert not report.ok  # ...but the repair does not hide the loss
    assert any(p.kind == "truncated" and "réparée" in p.message_fr for p in report.problems)


def test_a_power_cut_mid_write_is_repaired_and_noted_without_alarm(rig: Rig) -> None:
    path = month_file(rig)
    with path.open("ab") as handle:
        handle.write(b'{"action":"view_pat')  # the write that was being made when the power went
    pull.pull(rig.store, str(rig.make(2)), now=NOW)
    report = verify_journal(rig.home)
    assert report.ok, report.problems
    assert any("coupure de courant" in note for note in report.notes_fr)


def test_restoring_an_old_roster_with_a_removed_members_slot_is_reported(rig: Rig) -> None:
    roster_before = (rig.home / keys.ROSTER).read_bytes()
    slot_before = (rig.home / keys.KEYSLOTS / f"{USER}.json").read_bytes()
    doctor = keys.open_member(rig.home, DOCTOR, DOCTOR_PASSPHRASE)
    staff.remove(rig.home, doctor, USER)
    # The removed member puts back both files (before the appliance key is rotated, they open)...
    (rig.home / keys.ROSTER).write_bytes(roster_before)
    (rig.home / keys.KEYSLOTS / f"{USER}.json").write_bytes(slot_before)
    Session.unlock(rig.home, USER, PASSPHRASE).lock()
    problems = verify_journal(rig.home).problems
    # ...which the journal shows: an unlock on an older roster, and a roster file that is not the last one.
    assert sum(p.kind == "roster" for p in problems) == 2
    assert any("périmée" in p.message_fr for p in problems)


def test_a_reception_user_swapping_the_administration_key_is_reported(rig: Rig) -> None:
    """The limit of local prevention (test_staff_roles): found by verify, from the signed roster changes."""
    insider = keys.open_member(rig.home, USER, PASSPHRASE)
    own_admin = nacl.signing.SigningKey.generate()
    current = keys.read_roster(rig.home)
    promoted = keys.StaffMember(USER, keys.Role.PRESCRIBER, "10000000009")
    forged, slot = keys.make_keyslot(promoted, PASSPHRASE, insider.secrets)
    (rig.home / keys.KEYSLOTS / f"{USER}.json").write_bytes(forged)
    entries = [e for e in current.entries if e.member.name != USER]
    entries.append(keys.RosterEntry(promoted, slot.member_key, slot.digest))
    rewritten = keys.Roster(current.serial + 1, current.appliance, bytes(own_admin.verify_key), tuple(entries))
    (rig.home / keys.ROSTER).write_bytes(keys._roster_bytes(rewritten, own_admin, None))
    admin_line = f"continuity-admin-v1:{base64.b64encode(bytes(own_admin.verify_key)).decode()}\n"
    (rig.home / keys.ADMIN_PUB).write_text(admin_line)
    assert keys.open_member(rig.home, USER, PASSPHRASE).member.is_prescriber  # locally, it works...
    assert "roster" in kinds(rig.home)  # ...and verify says the roster is not the journaled one
    # journaling a matching staff change by hand does not help: its administration key is not endorsed
    Journal(rig.home).append(user=USER, action=Action.STAFF_ADDED, details={
        "staff": USER, "role": "prescriber", "roster": rewritten.signed_content(),
        "roster_signature": own_admin.sign(rewritten.signed_bytes()).signature.hex(),
    })  # fmt: skip
    problems = verify_journal(rig.home).problems
    assert [p.kind for p in problems] == ["roster"]
    assert "clé d'administration a changé" in problems[0].message_fr


def test_now_is_used_for_the_purge_date(rig: Rig) -> None:
    assert verify_journal(rig.home, now=NOW + dt.timedelta(days=400)).ok


def test_a_head_record_slot_spoiled_by_a_power_cut_falls_back_on_the_other(rig: Rig) -> None:
    head = rig.home / journal_module.HEAD_FILE
    recorded = journal_module.read_head_record(rig.home)
    assert recorded is not None
    data = bytearray(head.read_bytes())
    spoiled = (recorded.index % 2) * journal_module.HEAD_SLOT
    data[spoiled + 20 : spoiled + 40] = b"\0" * 20  # the slot being written when the power went
    head.write_bytes(bytes(data))
    fallback = journal_module.read_head_record(rig.home)
    assert fallback is not None and fallback.index == recorded.index - 1
    assert verify_journal(rig.home).ok  # a record one entry behind is what a crash leaves
    head.write_bytes(b"\0" * len(data))  # both slots gone: that is no power cut
    assert "head" in kinds(rig.home)
