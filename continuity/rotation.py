"""Appliance key rotation: what makes removing a staff member revoke them.

A removed member may have kept a copy of their keyslot and know their passphrase: that gives the
appliance keys, which decrypt every snapshot sealed to them. So after a removal the appliance keys
change: `rotate` generates new ones (snapshot box key, journal signing key, administration key),
grants them to the remaining staff through their personal keys (nobody's passphrase is needed),
signs the new roster (endorsed by the old administration key), re-seals the journal's checkpoint
key, keeps the old box keys sealed to the new one (old snapshots and journal details stay
readable), and writes the new `appliance.pub` for the publisher.

Until a snapshot sealed to the new key only is the current one, the rotation is *pending*: pulls
still accept files sealed to the old key (the data must not freeze) and `status` says WARNING
"rotation en attente". All files change together: they are staged in `rotation.staging/`, then a
COMMIT marker makes them final, and an interrupted rotation is finished at the next unlock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from continuity import files, keys
from continuity.errors import ContinuityError, StaffError, StoreError

log = logging.getLogger(__name__)

ROTATION_FILE = "rotation.json"
STAGING = "rotation.staging"
COMMIT = "COMMIT"
MANIFEST = "manifest.json"
JOURNAL_ENTRY = "journal-entry.json"


@dataclass(frozen=True)
class PendingRotation:
    old_key_id: str  # hex key id of the previous appliance box key
    new_key_id: str
    started_at: str
    by: str


@dataclass(frozen=True)
class RotationResult:
    appliance_pub: Path
    fingerprint: str
    regranted: list[str]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def rotate(home: Path, admin: keys.OpenedSlot, *, now: dt.datetime | None = None) -> RotationResult:
    """Rotate the appliance keys with the unlocked slot of a prescriber; journal it; return what to send."""
    from continuity import journal, witness

    finish_interrupted(home)
    if not admin.can_manage_staff:
        raise StaffError(
            "only a prescriber can rotate the appliance key",
            message_fr="Seul un prescripteur peut changer la clé du poste.",
        )
    old = admin.secrets
    assert old.admin_key is not None
    roster = keys.read_roster(home)
    new = keys.ApplianceSecrets.generate()
    assert new.admin_key is not None
    new_box_id = keys.key_id(bytes(new.box_key.public_key)).hex()
    old_box_id = keys.key_id(bytes(old.box_key.public_key)).hex()
    staged: dict[str, bytes] = {}
    regranted = []
    for entry in roster.entries:
        path = home / keys.KEYSLOTS / f"{entry.member.name}.json"
        granted = new if entry.member.is_prescriber else new.without_admin()
        staged[f"{keys.KEYSLOTS}/{entry.member.name}.json"] = keys.regrant_keyslot(path, entry, granted)
        regranted.append(entry.member.name)
    new_roster = keys.Roster(roster.serial + 1, new_box_id, bytes(new.admin_key.verify_key), roster.entries)
    staged[keys.ROSTER] = keys.roster_file_bytes(new_roster, new.admin_key, previous_admin=old.admin_key)
    staged[keys.ADMIN_PUB] = keys.key_line(keys.ADMIN_PREFIX, bytes(new.admin_key.verify_key))
    staged[keys.APPLIANCE_SIGN_PUB] = keys.key_line(keys.APPLIANCE_SIGN_PREFIX, bytes(new.signing_key.verify_key))
    staged[keys.APPLIANCE_PUB] = keys.key_line(keys.APPLIANCE_PUBLIC_PREFIX, bytes(new.box_key.public_key))
    staged[keys.ARCHIVE] = keys.archive_bytes([old.box_key, *old.previous_box_keys], new.box_key.public_key)
    checkpoint_key = journal.resealed_checkpoint_key(home, old.box_key, new.box_key.public_key)
    if checkpoint_key is not None:
        staged[journal.CHECKPOINT_KEY_FILE] = checkpoint_key
    moment = (now or _now()).isoformat(timespec="seconds")
    pending = {"old_key_id": old_box_id, "new_key_id": new_box_id, "started_at": moment, "by": admin.member.name}
    staged[ROTATION_FILE] = (json.dumps(pending, sort_keys=True) + "\n").encode()
    statement = witness.rotation_statement(old.signing_key, new.signing_key.verify_key)
    staged[f"{witness.WITNESS_DIR}/rotation.json"] = (json.dumps(statement, sort_keys=True) + "\n").encode()
    entry_details = {
        "old_appliance_key": bytes(old.signing_key.verify_key).hex(),
        "new_appliance_key": bytes(new.signing_key.verify_key).hex(),
        "old_box_key_id": old_box_id,
        "new_box_key_id": new_box_id,
        "statement": statement,
        "regranted": regranted,
        "roster": new_roster.signed_content(),
        "roster_signature": new.admin_key.sign(new_roster.signed_bytes()).signature.hex(),
        "endorsement": old.admin_key.sign(new_roster.signed_bytes()).signature.hex(),
        "roster_serial": new_roster.serial,
        "roster_digest": new_roster.digest,
    }
    _stage(home, staged, {"user": admin.member.name, "details": entry_details})
    _journal_staged_entry(home)
    _apply(home)
    # Anchor the rotation under a checkpoint signed with the new keys.
    journal.Journal(home).checkpoint(new.signing_key, admin.member.name, box_key=new.box_key)
    return RotationResult(home / keys.APPLIANCE_PUB, keys.fingerprint(bytes(new.box_key.public_key)), regranted)


# --- staging: every file changes, or none ----------------------------------------------------------


def _stage(home: Path, staged: dict[str, bytes], journal_entry: dict[str, Any]) -> None:
    staging = home / STAGING
    if staging.exists():
        shutil.rmtree(staging)
    try:
        staging.mkdir(mode=0o700)
        for number, (_target, data) in enumerate(sorted(staged.items())):
            files.write_atomic(staging / f"{number:03d}", data, 0o600)
        manifest = {f"{number:03d}": target for number, target in enumerate(sorted(staged))}
        files.write_atomic(staging / MANIFEST, json.dumps(manifest).encode(), 0o600)
        files.write_atomic(staging / JOURNAL_ENTRY, json.dumps(journal_entry).encode(), 0o600)
        files.create_exclusive(staging / COMMIT, b"commit\n", 0o600)
    except OSError as error:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)
        raise StoreError(f"{staging}: cannot stage the key rotation ({error.strerror})") from error


def _journal_staged_entry(home: Path) -> None:
    """The rotation's journal entry, once (also when an interrupted rotation is finished)."""
    from continuity import journal

    staging = home / STAGING
    try:
        staged = json.loads((staging / JOURNAL_ENTRY).read_text())
    except (OSError, ValueError):
        return
    book = journal.Journal(home)
    last = None
    for entry in book.entries():
        if entry.action == journal.APPLIANCE_KEY_ROTATED:
            last = entry
    new_key = staged["details"]["new_appliance_key"]
    if last is not None and last.details.get("new_appliance_key") == new_key:
        return
    book.append(user=staged["user"], action=journal.APPLIANCE_KEY_ROTATED, details=staged["details"])


def _apply(home: Path) -> None:
    staging = home / STAGING
    manifest = json.loads((staging / MANIFEST).read_text())
    touched: set[Path] = set()
    # appliance.pub last: until it changes, nothing on the nightly side sees the rotation.
    for name, target in sorted(manifest.items(), key=lambda item: item[1] == keys.APPLIANCE_PUB):
        source = staging / name
        if not source.exists():
            continue  # moved before an interruption
        destination = home / target
        destination.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.replace(source, destination)
        touched.add(destination.parent)
    for directory in touched | {home}:
        files.fsync_directory(directory)
    shutil.rmtree(staging)
    files.fsync_directory(home)


def finish_interrupted(home: Path) -> None:
    """A rotation cut by a crash: finished when it was committed, forgotten when it was not."""
    staging = home / STAGING
    if not staging.is_dir():
        return
    if not (staging / COMMIT).exists():
        log.warning("discarding an uncommitted key rotation in %s", staging)
        shutil.rmtree(staging, ignore_errors=True)
        return
    log.warning("finishing an interrupted key rotation from %s", staging)
    with contextlib.suppress(ContinuityError, ValueError):
        _journal_staged_entry(home)
    _apply(home)


# --- pending until the publisher seals to the new key ----------------------------------------------


def pending(home: Path) -> PendingRotation | None:
    """The rotation waiting for the publisher, or None (none, or the current snapshot is sealed to the new
    key only: then the rotation is complete and the old key is no longer accepted)."""
    try:
        value = json.loads((home / ROTATION_FILE).read_bytes()[:4096])
        rotation = PendingRotation(
            str(value["old_key_id"]), str(value["new_key_id"]), str(value["started_at"]), str(value["by"])
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.warning("%s unreadable (%s): treated as pending", home / ROTATION_FILE, error)
        return PendingRotation("", "", "", "")
    recipients = _current_recipients(home)
    if recipients is not None and rotation.new_key_id in recipients and rotation.old_key_id not in recipients:
        return None
    return rotation


def _current_recipients(home: Path) -> set[str] | None:
    from continuity import envelope
    from continuity.store import Store

    store = Store(home)
    try:
        path = store.current_path()
        if path is None:
            return None
        with path.open("rb") as handle:
            header = envelope.read_header(handle, keys.trusted_publishers(home))
    except (ContinuityError, OSError) as error:
        log.warning("cannot read the current snapshot's recipients: %s", error)
        return None
    return {recipient.key_id.hex() for recipient in header.recipients}


def accepted_key_ids(home: Path) -> list[bytes]:
    """The appliance key ids a pulled file may be sealed to: the current one, and the previous one
    while the rotation waits for the publisher."""
    current = keys.key_id(bytes(keys.appliance_public_key(home)))
    waiting = pending(home)
    if waiting is not None and waiting.old_key_id:
        with contextlib.suppress(ValueError):
            return [current, bytes.fromhex(waiting.old_key_id)]
    return [current]


def status_problem(home: Path) -> str | None:
    """For `continuity status`: a pending rotation is a WARNING until the publisher switches."""
    waiting = pending(home)
    if waiting is None:
        return None
    since = f" depuis le {waiting.started_at}" if waiting.started_at else ""
    return (
        f"rotation en attente{since} : l'éditeur chiffre encore pour l'ancienne clé du poste "
        "(envoyez-lui le nouveau appliance.pub)"
    )
