"""Staff roles bound to the keyslot: the signed roster, the administration key, removal, restoration.

Each test plays an insider who holds what a keyslot gives (the appliance secrets) or who edits files
in the home, and checks what the appliance refuses.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import nacl.signing
import pytest

from continuity import keys, staff
from continuity.errors import KeyslotError, KeyslotRefused, StaffError
from continuity.journal import Journal
from continuity.keys import Role, StaffMember
from tests.transport_helpers import use_weak_kdf

DOCTOR_PASSPHRASE = "cheval correct agrafe"
DESK_PASSPHRASE = "bureau lumineux cerise"
OTHER_PASSPHRASE = "une autre phrase longue"
RPPS = "10101010105"
OTHER_RPPS = "10000000009"


@pytest.fixture(autouse=True)
def _weak_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    use_weak_kdf(monkeypatch)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """dr.martin (prescriber, first member) and accueil (reception)."""
    home = tmp_path / "home"
    staff.initialise(home, "dr.martin", DOCTOR_PASSPHRASE, role=Role.PRESCRIBER, rpps=RPPS)
    doctor = keys.open_member(home, "dr.martin", DOCTOR_PASSPHRASE)
    staff.add(home, doctor, "accueil", DESK_PASSPHRASE)
    return home


def slot_path(home: Path, user: str) -> Path:
    return home / keys.KEYSLOTS / f"{user}.json"


def test_unlock_says_who_and_with_which_role(home: Path) -> None:
    doctor = keys.open_member(home, "dr.martin", DOCTOR_PASSPHRASE)
    desk = keys.open_member(home, "accueil", DESK_PASSPHRASE)
    assert doctor.member == StaffMember("dr.martin", Role.PRESCRIBER, RPPS)
    assert desk.member == StaffMember("accueil", Role.RECEPTION, "")
    assert doctor.can_manage_staff and not desk.can_manage_staff
    # both open the same appliance: reception reads the same snapshots
    assert bytes(doctor.secrets.box_key) == bytes(desk.secrets.box_key)
    assert keys.staff_roster(home) == [desk.member, doctor.member]


def test_editing_the_role_in_the_keyslot_does_not_promote(home: Path) -> None:
    path = slot_path(home, "accueil")
    slot = json.loads(path.read_text())
    slot["role"], slot["rpps"] = "prescriber", OTHER_RPPS
    path.write_text(json.dumps(slot))
    with pytest.raises(KeyslotRefused):
        keys.open_member(home, "accueil", DESK_PASSPHRASE)


def test_editing_the_role_in_the_roster_breaks_its_signature(home: Path) -> None:
    path = home / keys.ROSTER
    roster = json.loads(path.read_text())
    for member in roster["members"]:
        if member["user"] == "accueil":
            member["role"], member["rpps"] = "prescriber", OTHER_RPPS
    path.write_text(json.dumps(roster))
    with pytest.raises(KeyslotError, match="signature"):
        keys.open_member(home, "accueil", DESK_PASSPHRASE)
    with pytest.raises(KeyslotError):
        keys.open_member(home, "dr.martin", DOCTOR_PASSPHRASE)  # nobody unlocks on a forged roster


def test_reception_holding_the_appliance_secrets_cannot_mint_a_prescriber_slot(home: Path) -> None:
    """The attack the AEAD descriptor alone does not stop: every slot releases the appliance secrets."""
    desk = keys.open_member(home, "accueil", DESK_PASSPHRASE)
    # 1. a new slot for themself with the prescriber role, wrapping the very same secrets
    forged, _ = keys.make_keyslot(StaffMember("accueil", Role.PRESCRIBER, OTHER_RPPS), DESK_PASSPHRASE, desk.secrets)
    slot_path(home, "accueil").write_bytes(forged)
    with pytest.raises(KeyslotRefused):
        keys.open_member(home, "accueil", DESK_PASSPHRASE)
    # 2. a new member through the library: no administration key in a reception grant
    with pytest.raises(StaffError, match="only a prescriber"):
        keys.add_staff(home, desk.secrets, "complice", OTHER_PASSPHRASE, role=Role.PRESCRIBER, rpps=OTHER_RPPS)
    # 3. a roster listing the forged slot, signed with a key of their own: admin.pub does not match
    own_admin = nacl.signing.SigningKey.generate()
    current = keys.read_roster(home)
    promoted = StaffMember("accueil", Role.PRESCRIBER, OTHER_RPPS)
    forged, forged_slot = keys.make_keyslot(promoted, DESK_PASSPHRASE, desk.secrets)
    slot_path(home, "accueil").write_bytes(forged)
    entries = [e for e in current.entries if e.member.name != "accueil"]
    entries.append(keys.RosterEntry(promoted, forged_slot.member_key, forged_slot.digest))
    rewritten = keys.Roster(current.serial + 1, current.appliance, bytes(own_admin.verify_key), tuple(entries))
    (home / keys.ROSTER).write_bytes(keys._roster_bytes(rewritten, own_admin, None))
    with pytest.raises(KeyslotError, match="another administration key"):
        keys.open_member(home, "accueil", DESK_PASSPHRASE)
    # Replacing admin.pub as well passes on this appliance alone: that is found by `journal verify`
    # and the witness (tests/unit/test_journal_head.py), not prevented (docs/threat-model.md).


def test_reception_cannot_add_or_remove_staff(home: Path) -> None:
    desk = keys.open_member(home, "accueil", DESK_PASSPHRASE)
    with pytest.raises(StaffError, match="only a prescriber"):
        staff.add(home, desk, "intrus", OTHER_PASSPHRASE)
    with pytest.raises(StaffError, match="only a prescriber"):
        staff.remove(home, desk, "dr.martin")
    assert [m.name for m in keys.staff_roster(home)] == ["accueil", "dr.martin"]


def test_a_restored_keyslot_of_a_removed_member_is_refused(home: Path, tmp_path: Path) -> None:
    kept = tmp_path / "kept-accueil.json"
    shutil.copy(slot_path(home, "accueil"), kept)
    doctor = keys.open_member(home, "dr.martin", DOCTOR_PASSPHRASE)
    staff.remove(home, doctor, "accueil")
    assert not slot_path(home, "accueil").exists()
    shutil.copy(kept, slot_path(home, "accueil"))  # the removed member puts their file back
    with pytest.raises(KeyslotRefused):
        keys.open_member(home, "accueil", DESK_PASSPHRASE)
    assert keys.members_with_slots(home) == [("accueil", None), ("dr.martin", doctor.member)]
    # enrolling the same name again replaces the refused file
    staff.add(home, doctor, "accueil", OTHER_PASSPHRASE)
    assert keys.open_member(home, "accueil", OTHER_PASSPHRASE).member.role is Role.RECEPTION


def test_the_first_reception_member_hands_staff_management_to_the_first_prescriber(tmp_path: Path) -> None:
    home = tmp_path / "home"
    staff.initialise(home, "accueil", DESK_PASSPHRASE)  # a receptionist installs the appliance
    desk = keys.open_member(home, "accueil", DESK_PASSPHRASE)
    assert desk.member.role is Role.RECEPTION and desk.can_manage_staff  # until a prescriber exists
    staff.add(home, desk, "dr.martin", DOCTOR_PASSPHRASE, role=Role.PRESCRIBER, rpps=RPPS)
    # the secrets the receptionist held (and may have kept) no longer administer anything
    with pytest.raises(StaffError, match="only a prescriber"):
        keys.add_staff(home, desk.secrets, "complice", OTHER_PASSPHRASE, role=Role.PRESCRIBER, rpps=OTHER_RPPS)
    assert not keys.open_member(home, "accueil", DESK_PASSPHRASE).can_manage_staff
    assert keys.open_member(home, "dr.martin", DOCTOR_PASSPHRASE).can_manage_staff
    added = [e for e in Journal(home).entries() if e.action == "staff_added"]
    assert added[-1].details["admin_key_replaced"] == keys.fingerprint(bytes(desk.secrets.admin_key.verify_key))  # type: ignore[union-attr]


def test_a_crash_between_the_roster_and_admin_pub_is_harmless(tmp_path: Path) -> None:
    home = tmp_path / "home"
    staff.initialise(home, "accueil", DESK_PASSPHRASE)
    old_admin_pub = (home / keys.ADMIN_PUB).read_bytes()
    desk = keys.open_member(home, "accueil", DESK_PASSPHRASE)
    staff.add(home, desk, "dr.martin", DOCTOR_PASSPHRASE, role=Role.PRESCRIBER, rpps=RPPS)
    (home / keys.ADMIN_PUB).write_bytes(old_admin_pub)  # as if the last write had not happened
    assert keys.open_member(home, "dr.martin", DOCTOR_PASSPHRASE).member.is_prescriber  # endorsed by the old key
    # but the endorsement must be by the key admin.pub names
    roster = json.loads((home / keys.ROSTER).read_text())
    roster["endorsement"] = base64.b64encode(b"\x00" * 64).decode()
    (home / keys.ROSTER).write_text(json.dumps(roster))
    with pytest.raises(KeyslotError, match="another administration key"):
        keys.open_member(home, "dr.martin", DOCTOR_PASSPHRASE)


@pytest.mark.parametrize(
    ("role", "rpps", "message"),
    [
        (Role.PRESCRIBER, None, "needs an RPPS"),
        (Role.PRESCRIBER, "10101010101", "invalid RPPS"),  # wrong check digit
        (Role.PRESCRIBER, "1010101010", "invalid RPPS"),
        (Role.RECEPTION, RPPS, "no RPPS"),
        ("admin", None, "unknown role"),
    ],
)
def test_roles_and_rpps_are_checked(home: Path, role: str, rpps: str | None, message: str) -> None:
    doctor = keys.open_member(home, "dr.martin", DOCTOR_PASSPHRASE)
    with pytest.raises(StaffError, match=message):
        staff.add(home, doctor, "dr.durand", OTHER_PASSPHRASE, role=role, rpps=rpps)


def test_the_last_prescriber_stays(home: Path) -> None:
    doctor = keys.open_member(home, "dr.martin", DOCTOR_PASSPHRASE)
    with pytest.raises(StaffError, match="last prescriber"):
        staff.remove(home, doctor, "dr.martin")
    staff.add(home, doctor, "dr.durand", OTHER_PASSPHRASE, role=Role.PRESCRIBER, rpps=OTHER_RPPS)
    staff.remove(home, doctor, "dr.martin")  # another prescriber remains
    assert keys.open_member(home, "dr.durand", OTHER_PASSPHRASE).can_manage_staff


def test_staff_changes_are_journaled_with_the_roster(home: Path) -> None:
    entries = [e for e in Journal(home).entries() if e.action.startswith("staff_")]
    assert [(e.user, e.details["staff"], e.details["role"]) for e in entries] == [
        ("dr.martin", "dr.martin", "prescriber"),
        ("dr.martin", "accueil", "reception"),
    ]
    assert entries[0].details["init"] is True and entries[0].details["rpps"] == RPPS
    roster = keys.read_roster(home)
    assert entries[-1].details["roster_digest"] == roster.digest
    assert entries[-1].details["roster_serial"] == roster.serial == 2
