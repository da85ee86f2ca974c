"""Revocation that revokes: a removed member's kept keyslot, then the appliance key rotation.

The attack is reproduced first (a removed member who kept their keyslot and the roster opens the
appliance again and reads the next snapshot), then the rotation, the pending state until the
publisher seals to the new key, and what stays readable from before.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from continuity import envelope, keys, pull, rotation, staff, status, witness
from continuity.cli import cli
from continuity.errors import KeyslotError, NotForThisAppliance, StaffError, StoreError
from continuity.journal import Action, Journal, prescription_payload, verify_journal
from continuity.session import Session
from tests.transport_helpers import NOW, PASSPHRASE, USER, Rig, make_rig, use_weak_kdf
from tests.unit.journal_helpers import make_prescription

DOCTOR, DOCTOR_PASSPHRASE, RPPS = "dr.martin", "ordonnance urgente bleue", "10101010105"
LEAVER, LEAVER_PASSPHRASE = "remplacant", "phrase du locum parti"


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Rig:
    """alice (reception, first member), dr.martin (prescriber), a leaver (reception); snapshot 1 stored."""
    use_weak_kdf(monkeypatch)
    monkeypatch.delenv("CONTINUITY_HOME", raising=False)
    rig = make_rig(tmp_path)
    alice = keys.open_member(rig.home, USER, PASSPHRASE)
    staff.add(rig.home, alice, DOCTOR, DOCTOR_PASSPHRASE, role=keys.Role.PRESCRIBER, rpps=RPPS)
    doctor = keys.open_member(rig.home, DOCTOR, DOCTOR_PASSPHRASE)
    staff.add(rig.home, doctor, LEAVER, LEAVER_PASSPHRASE)
    pull.pull(rig.store, str(rig.make(1)), now=NOW)
    Session.unlock(rig.home, DOCTOR, DOCTOR_PASSPHRASE).lock()
    return rig


def keep_copies(rig: Rig, tmp: Path) -> Path:
    """What a leaving member walks away with: their keyslot and the roster listing it."""
    kept = tmp / "kept"
    kept.mkdir()
    shutil.copy(rig.home / keys.KEYSLOTS / f"{LEAVER}.json", kept)
    shutil.copy(rig.home / keys.ROSTER, kept)
    return kept


def put_back(rig: Rig, kept: Path) -> None:
    shutil.copy(kept / f"{LEAVER}.json", rig.home / keys.KEYSLOTS / f"{LEAVER}.json")
    shutil.copy(kept / keys.ROSTER, rig.home / keys.ROSTER)


def remove_leaver(rig: Rig) -> keys.OpenedSlot:
    doctor = keys.open_member(rig.home, DOCTOR, DOCTOR_PASSPHRASE)
    staff.remove(rig.home, doctor, LEAVER)
    return doctor


def test_without_rotation_a_removed_member_still_holds_the_keys(rig: Rig, tmp_path: Path) -> None:
    """The attack of issue 13: removal alone does not revoke."""
    kept = keep_copies(rig, tmp_path)
    leaver_secrets = keys.open_member(rig.home, LEAVER, LEAVER_PASSPHRASE).secrets
    remove_leaver(rig)
    put_back(rig, kept)
    assert keys.open_member(rig.home, LEAVER, LEAVER_PASSPHRASE).member.name == LEAVER  # opens again
    # and offline, the secrets they had decrypt the next snapshot
    nxt = rig.make(2)
    with nxt.open("rb") as handle:
        header = envelope.read_header(handle, keys.trusted_publishers(rig.home))
        assert envelope.decrypt_payload(handle, header, leaver_secrets.box_key)


def test_after_rotation_the_removed_member_is_locked_out(rig: Rig, tmp_path: Path) -> None:
    kept = keep_copies(rig, tmp_path)
    leaver_secrets = keys.open_member(rig.home, LEAVER, LEAVER_PASSPHRASE).secrets
    doctor = remove_leaver(rig)
    result = rotation.rotate(rig.home, doctor)
    assert sorted(result.regranted) == [USER, DOCTOR]
    put_back(rig, kept)
    with pytest.raises(KeyslotError):
        keys.open_member(rig.home, LEAVER, LEAVER_PASSPHRASE)
    # the publisher now seals to the new key only: the old secrets open nothing
    new_only = rig.make(2, recipients=[keys.appliance_public_key(rig.home)])
    with new_only.open("rb") as handle:
        header = envelope.read_header(handle, keys.trusted_publishers(rig.home))
        with pytest.raises(NotForThisAppliance):
            envelope.decrypt_payload(handle, header, leaver_secrets.box_key)


def test_the_remaining_staff_keep_their_passphrases_and_roles(rig: Rig) -> None:
    doctor = remove_leaver(rig)
    old_admin = keys.admin_verify_key(rig.home)
    rotation.rotate(rig.home, doctor)
    alice = keys.open_member(rig.home, USER, PASSPHRASE)
    after = keys.open_member(rig.home, DOCTOR, DOCTOR_PASSPHRASE)
    assert alice.member.role is keys.Role.RECEPTION and not alice.can_manage_staff
    assert after.member == keys.StaffMember(DOCTOR, keys.Role.PRESCRIBER, RPPS) and after.can_manage_staff
    assert keys.admin_verify_key(rig.home) != old_admin
    assert bytes(after.secrets.box_key) != bytes(doctor.secrets.box_key)
    assert [bytes(k) for k in after.secrets.previous_box_keys] == [bytes(doctor.secrets.box_key)]
    assert [bytes(k) for k in alice.secrets.previous_box_keys] == [bytes(doctor.secrets.box_key)]


def test_pending_until_the_publisher_seals_to_the_new_key_only(rig: Rig) -> None:
    old_public = keys.appliance_public_key(rig.home)
    rotation.rotate(rig.home, remove_leaver(rig))
    new_public = keys.appliance_public_key(rig.home)
    report = status.compute_status(rig.home, now=NOW)
    assert report.code == status.WARNING and any("rotation en attente" in p for p in report.problems)
    # the publisher has not switched yet: its next file, sealed to the old key, is still accepted...
    assert pull.pull(rig.store, str(rig.make(2, recipients=[old_public])), now=NOW).outcome == "accepted"
    session = Session.unlock(rig.home, DOCTOR, DOCTOR_PASSPHRASE)  # ...and opens, with the archived key
    assert session.sequence == 2
    session.lock()
    # sealed to both: the leaver could still read it, so still pending
    pull.pull(rig.store, str(rig.make(3, recipients=[old_public, new_public])), now=NOW)
    assert rotation.pending(rig.home) is not None
    # the new key only: done; status is OK again and the old key is refused from now on
    pull.pull(rig.store, str(rig.make(4, recipients=[new_public])), now=NOW)
    assert rotation.pending(rig.home) is None
    assert status.compute_status(rig.home, now=NOW).code == status.OK
    with pytest.raises(NotForThisAppliance):
        pull.pull(rig.store, str(rig.make(5, recipients=[old_public])), now=NOW)


def test_what_was_journaled_before_stays_verifiable_and_readable(rig: Rig) -> None:
    prescription = make_prescription(1)
    Journal(rig.home).append(user=DOCTOR, action=Action.PRINT_PRESCRIPTION, patient_id=prescription.patient.id,
                             sealed=prescription_payload(prescription, pdf_sha256="ab" * 32))  # fmt: skip
    rotation.rotate(rig.home, remove_leaver(rig))
    Session.unlock(rig.home, USER, PASSPHRASE).lock()
    report = verify_journal(rig.home)
    assert report.ok, report.problems
    rotated = [e for e in Journal(rig.home).entries() if e.action == "appliance_key_rotated"]
    assert len(rotated) == 1 and rotated[0].details["regranted"] == [USER, DOCTOR]
    secrets = keys.open_member(rig.home, DOCTOR, DOCTOR_PASSPHRASE).secrets
    printed = next(e for e in Journal(rig.home).entries() if e.action == "print_prescription")
    assert printed.open_sealed(secrets.all_box_keys)["prescription_id"] == prescription.id


def test_a_rotation_entry_without_the_old_keys_signature_is_reported(rig: Rig) -> None:
    rotation.rotate(rig.home, remove_leaver(rig))
    entry = next(e for e in Journal(rig.home).entries() if e.action == "appliance_key_rotated")
    forged = {**entry.details, "statement": {**entry.details["statement"], "signature": "00" * 64}}
    Journal(rig.home).append(user=DOCTOR, action="appliance_key_rotated", details=forged)
    assert "roster" in {p.kind for p in verify_journal(rig.home).problems}


def test_reception_cannot_rotate(rig: Rig) -> None:
    with pytest.raises(StaffError, match="prescriber"):
        rotation.rotate(rig.home, keys.open_member(rig.home, USER, PASSPHRASE))


def test_an_interrupted_rotation_is_finished_at_the_next_unlock(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    doctor = remove_leaver(rig)
    real_apply = rotation._apply

    def crash(home: Path) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(rotation, "_apply", crash)
    with pytest.raises(OSError, match="power cut"):
        rotation.rotate(rig.home, doctor)
    assert (rig.home / rotation.STAGING / rotation.COMMIT).exists()
    monkeypatch.setattr(rotation, "_apply", real_apply)
    opened = keys.open_member(rig.home, DOCTOR, DOCTOR_PASSPHRASE)  # finishes it first
    assert not (rig.home / rotation.STAGING).exists()
    assert bytes(opened.secrets.box_key.public_key) == bytes(keys.appliance_public_key(rig.home))
    assert bytes(opened.secrets.box_key) != bytes(doctor.secrets.box_key)
    rotated = [e for e in Journal(rig.home).entries() if e.action == "appliance_key_rotated"]
    assert len(rotated) == 1
    Session.unlock(rig.home, DOCTOR, DOCTOR_PASSPHRASE).lock()
    assert verify_journal(rig.home).ok


def test_an_uncommitted_rotation_is_forgotten(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    doctor = remove_leaver(rig)
    before = keys.appliance_public_key(rig.home)

    def cut(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(rotation.files, "create_exclusive", cut)  # the COMMIT marker cannot be written
        with pytest.raises(StoreError, match="cannot stage"):
            rotation.rotate(rig.home, doctor)
    assert not (rig.home / rotation.STAGING).exists()
    (rig.home / rotation.STAGING).mkdir()  # as if a power cut had left a partial staging behind
    (rig.home / rotation.STAGING / "000").write_bytes(b"partial")
    keys.open_member(rig.home, DOCTOR, DOCTOR_PASSPHRASE)
    assert not (rig.home / rotation.STAGING).exists()
    assert keys.appliance_public_key(rig.home) == before


def test_the_witness_learns_which_key_continues_the_journal(rig: Rig, tmp_path: Path) -> None:
    ledger = witness.WitnessLedger(tmp_path / "ledger", rig.publisher)
    old_key = bytes(keys.appliance_verify_key(rig.home)).hex()
    request = witness.head_request(rig.home)
    assert request is not None
    ledger.record(witness.appliance_key_id(old_key), witness.journal.canonical_json(request))
    rotation.rotate(rig.home, remove_leaver(rig))
    request = witness.head_request(rig.home)
    assert request is not None and request["rotation"]["old_key"] == old_key
    new_key = request["appliance_key"]
    ledger.record(witness.appliance_key_id(new_key), witness.journal.canonical_json(request))
    continued = ledger.directory / witness.appliance_key_id(old_key) / "continued-by"
    assert continued.read_text().strip() == witness.appliance_key_id(new_key)


def test_staff_remove_offers_the_rotation_and_staff_rotate_does_it(rig: Rig) -> None:
    doctor_file = rig.tmp / "doctor.pass"
    doctor_file.write_text(DOCTOR_PASSPHRASE + "\n")
    runner = CliRunner()
    removed = runner.invoke(cli, ["staff", "remove", "--home", str(rig.home), LEAVER, "--user", DOCTOR,
                                  "--passphrase-file", str(doctor_file), "--no-rotate"])  # fmt: skip
    assert removed.exit_code == 0, removed.output
    assert "Changez la clé du poste" in removed.stderr and "staff rotate" in removed.stderr
    rotated = runner.invoke(cli, ["staff", "rotate", "--home", str(rig.home), "--user", DOCTOR,
                                  "--passphrase-file", str(doctor_file)])  # fmt: skip
    assert rotated.exit_code == 0, rotated.output
    assert "appliance.pub" in rotated.stdout and "rotation en attente" in rotated.stdout
    shown = runner.invoke(cli, ["status", "--home", str(rig.home)])
    assert shown.exit_code == status.WARNING and "rotation en attente" in shown.stdout
