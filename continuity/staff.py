"""Staff changes as the practice makes them: enrolment at init, adding and removing members, journaled.

The cryptography (keyslots, grants, the signed roster) is in keys.py; this module adds the rules a
person meets (only a current administrator changes staff) and writes each change in the journal with
the roster's serial and digest, so that `journal verify` can tell a roster put back from a backup.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from continuity import keys
from continuity.journal import Action, Journal


def roster_details(home: Path, **extra: Any) -> dict[str, Any]:
    """What a staff change journals in clear (logins, roles and RPPS are not patient data): the new
    roster itself with its signature, so that `journal verify` can follow the administration key
    from the first roster on and compare the last one with `staff.json`."""
    roster = keys.read_roster(home)
    details = {
        **extra,
        "roster_serial": roster.serial,
        "roster_digest": roster.digest,
        "admin_key": keys.fingerprint(roster.admin_key),
        "roster": roster.signed_content(),
        "roster_signature": roster.signature.hex(),
    }
    if roster.endorsement is not None:
        details["endorsement"] = roster.endorsement.hex()
    return details


def initialise(
    home: Path,
    user: str,
    passphrase: str,
    *,
    role: keys.Role | str = keys.Role.RECEPTION,
    rpps: str | None = None,
    limits: keys.KdfLimits | None = None,
) -> keys.ApplianceSecrets:
    """`continuity init`: the appliance keys, the first member, and the journal's first entry."""
    secrets = keys.init_appliance(home, user, passphrase, limits, role=role, rpps=rpps)
    member = keys.read_roster(home).members[0]
    Journal(home).append(
        user=user,
        action=Action.STAFF_ADDED,
        details=roster_details(home, staff=user, role=member.role.value, rpps=member.rpps, init=True),
    )
    return secrets


def add(
    home: Path,
    admin: keys.OpenedSlot,
    name: str,
    passphrase: str,
    *,
    role: keys.Role | str = keys.Role.RECEPTION,
    rpps: str | None = None,
    limits: keys.KdfLimits | None = None,
) -> keys.Roster:
    """Enrol `name`; `admin` is the unlocked slot of a prescriber (StaffError otherwise)."""
    previous_admin_key = keys.admin_verify_key(home)
    roster = keys.add_staff(home, admin.secrets, name, passphrase, limits, role=role, rpps=rpps)
    member = roster.find(name)
    assert member is not None
    extra: dict[str, Any] = {"staff": name, "role": member.member.role.value, "rpps": member.member.rpps}
    if roster.admin_key != bytes(previous_admin_key):
        extra["admin_key_replaced"] = keys.fingerprint(bytes(previous_admin_key))
    Journal(home).append(user=admin.member.name, action=Action.STAFF_ADDED, details=roster_details(home, **extra))
    return roster


def remove(home: Path, admin: keys.OpenedSlot, name: str) -> keys.Roster:
    """Take `name` out of the roster; the caller then offers the appliance key rotation."""
    before = keys.read_roster(home).find(name)
    roster = keys.remove_staff(home, admin.secrets, name)
    role = before.member.role.value if before else ""
    Journal(home).append(
        user=admin.member.name,
        action=Action.STAFF_REMOVED,
        details=roster_details(home, staff=name, role=role),
    )
    return roster
