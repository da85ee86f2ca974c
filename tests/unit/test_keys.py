"""Keys: publisher key files, appliance init, keyslots (argon2id, user binding), staff, pinned publishers."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import nacl.pwhash
import pytest
from nacl.public import PublicKey, SealedBox

from continuity import keys
from continuity.errors import AuthenticationError, KeyslotError, KeyslotRefused, NotInitialized, StaffError
from tests.transport_helpers import PASSPHRASE, flip_byte, use_weak_kdf

OTHER_PASSPHRASE = "une autre phrase longue"


@pytest.fixture(autouse=True)
def _weak_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    use_weak_kdf(monkeypatch)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    keys.init_appliance(home, "alice", PASSPHRASE)
    return home


def test_default_limits_are_at_least_moderate_without_the_test_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(keys.WEAK_KDF_ENV)
    limits = keys.default_limits()
    assert limits.opslimit >= nacl.pwhash.argon2id.OPSLIMIT_MODERATE
    assert limits.memlimit >= nacl.pwhash.argon2id.MEMLIMIT_MODERATE


def test_weak_slot_is_refused_without_the_test_switch(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(keys.WEAK_KDF_ENV)
    with pytest.raises(KeyslotError, match="below the minimum"):
        keys.open_keyslot(home, "alice", PASSPHRASE)


def test_publisher_keygen_writes_private_key_0600_and_refuses_overwrite(tmp_path: Path) -> None:
    fingerprint = keys.generate_publisher_key(tmp_path / "pub")
    secret = tmp_path / "pub" / "publisher.key"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    verify = keys.load_publisher_verify_key(tmp_path / "pub" / "publisher.pub")
    assert keys.fingerprint(bytes(verify)) == fingerprint
    assert len(fingerprint) == 19 and fingerprint.count("-") == 3
    assert keys.load_publisher_signing_key(tmp_path / "pub").verify_key == verify
    with pytest.raises(StaffError):
        keys.generate_publisher_key(tmp_path / "pub")


def test_key_types_cannot_be_mixed_up(tmp_path: Path, home: Path) -> None:
    with pytest.raises(KeyslotError, match="not a continuity-publisher-v1 key"):
        keys.load_publisher_verify_key(home / keys.APPLIANCE_PUB)
    keys.generate_publisher_key(tmp_path / "pub")
    with pytest.raises(KeyslotError):
        keys.load_appliance_public_key(tmp_path / "pub" / "publisher.pub")


def test_init_then_open_gives_keys_matching_the_public_files(home: Path) -> None:
    secrets = keys.open_keyslot(home, "alice", PASSPHRASE)
    assert secrets.box_key.public_key == keys.appliance_public_key(home)
    assert secrets.signing_key.verify_key == keys.appliance_verify_key(home)
    assert stat.S_IMODE((home / "keyslots" / "alice.json").stat().st_mode) == 0o600
    assert keys.list_staff(home) == ["alice"]
    # the private key is nowhere in clear
    raw = bytes(secrets.box_key)
    for path in home.rglob("*"):
        if path.is_file():
            assert raw not in path.read_bytes()


def test_init_refuses_an_initialised_home_and_a_short_passphrase(tmp_path: Path, home: Path) -> None:
    with pytest.raises(StaffError):
        keys.init_appliance(home, "bob", PASSPHRASE)
    with pytest.raises(StaffError, match="too short"):
        keys.init_appliance(tmp_path / "other", "bob", "court")


def test_wrong_passphrase_and_unknown_user_look_the_same(home: Path) -> None:
    with pytest.raises(AuthenticationError):
        keys.open_keyslot(home, "alice", "pas la bonne phrase")
    with pytest.raises(AuthenticationError):
        keys.open_keyslot(home, "mallory", PASSPHRASE)


def test_passphrase_is_unicode_normalised(tmp_path: Path) -> None:
    home = tmp_path / "h"
    keys.init_appliance(home, "alice", "phrase d\u00e9j\u00e0 longue")
    keys.open_keyslot(home, "alice", "phrase de\u0301ja\u0300 longue")


def test_corrupted_keyslot_ciphertext_does_not_open(home: Path) -> None:
    path = home / "keyslots" / "alice.json"
    slot = json.loads(path.read_text())
    slot["ciphertext"] = base64.b64encode(flip_byte(base64.b64decode(slot["ciphertext"]), 5)).decode()
    path.write_text(json.dumps(slot))
    # The roster holds the digest of each slot: a changed byte is refused before the passphrase is tried.
    with pytest.raises(KeyslotRefused):
        keys.open_keyslot(home, "alice", PASSPHRASE)


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],
        lambda text: "[]",
        lambda text: text.replace('"version": 2', '"version": 3'),
        lambda text: text.replace('"version": 2', '"version": 1'),
        lambda text: text.replace('"alg": "argon2id13"', '"alg": "scrypt"'),
        lambda text: text.replace('"nonce": "', '"nonce": "AAAA'),
        lambda text: text.replace("{", '{"user": "x", ', 1),
        lambda text: "\xff" + text,
    ],
)
def test_structurally_broken_keyslot_is_keyslot_error(home: Path, damage: object) -> None:
    path = home / "keyslots" / "alice.json"
    path.write_text(damage(path.read_text()))  # type: ignore[operator]
    with pytest.raises(KeyslotError):
        keys.open_keyslot(home, "alice", PASSPHRASE)


def test_altered_kdf_parameters_are_refused(home: Path) -> None:
    path = home / "keyslots" / "alice.json"
    slot = json.loads(path.read_text())
    slot["kdf"]["opslimit"] += 1
    path.write_text(json.dumps(slot))
    with pytest.raises(KeyslotRefused):
        keys.open_keyslot(home, "alice", PASSPHRASE)


def test_keyslot_is_bound_to_its_user(home: Path) -> None:
    secrets = keys.open_keyslot(home, "alice", PASSPHRASE)
    keys.add_staff(home, secrets, "bob", OTHER_PASSPHRASE)
    # copying alice's slot over bob's does not let alice's passphrase in as bob
    (home / "keyslots" / "bob.json").write_bytes((home / "keyslots" / "alice.json").read_bytes())
    with pytest.raises(KeyslotError, match="belongs to 'alice'"):
        keys.open_keyslot(home, "bob", PASSPHRASE)
    # and rewriting the user field inside is refused (not the slot the roster lists for bob)
    slot = json.loads((home / "keyslots" / "alice.json").read_text())
    slot["user"] = "bob"
    (home / "keyslots" / "bob.json").write_text(json.dumps(slot))
    with pytest.raises(KeyslotRefused):
        keys.open_keyslot(home, "bob", PASSPHRASE)


def test_slot_of_another_appliance_is_refused(tmp_path: Path, home: Path) -> None:
    other = tmp_path / "other"
    keys.init_appliance(other, "alice", PASSPHRASE)
    (home / "keyslots" / "alice.json").write_bytes((other / "keyslots" / "alice.json").read_bytes())
    with pytest.raises(KeyslotRefused):
        keys.open_keyslot(home, "alice", PASSPHRASE)


def test_a_grant_of_another_appliance_is_refused(tmp_path: Path, home: Path) -> None:
    # The grant is not covered by the roster (a rotation replaces it without passphrases): its content
    # is checked against the appliance's public keys instead.
    other = keys.init_appliance(tmp_path / "other", "alice", PASSPHRASE)
    path = home / "keyslots" / "alice.json"
    slot = json.loads(path.read_text())
    member_key = PublicKey(base64.b64decode(slot["member_key"]))
    slot["grant"] = base64.b64encode(SealedBox(member_key).encrypt(other.to_bytes())).decode()
    path.write_text(json.dumps(slot))
    with pytest.raises(KeyslotError, match="another appliance"):
        keys.open_keyslot(home, "alice", PASSPHRASE)


def test_staff_add_list_remove(home: Path) -> None:
    secrets = keys.open_keyslot(home, "alice", PASSPHRASE)
    keys.add_staff(home, secrets, "dr.martin", OTHER_PASSPHRASE)
    assert keys.list_staff(home) == ["alice", "dr.martin"]
    assert keys.open_keyslot(home, "dr.martin", OTHER_PASSPHRASE).box_key.public_key == secrets.box_key.public_key
    with pytest.raises(StaffError, match="already"):
        keys.add_staff(home, secrets, "dr.martin", OTHER_PASSPHRASE)
    with pytest.raises(StaffError, match="too short"):
        keys.add_staff(home, secrets, "carol", "court")
    with pytest.raises(StaffError, match="invalid user name"):
        keys.add_staff(home, secrets, "../etc", OTHER_PASSPHRASE)
    with pytest.raises(StaffError, match="reserved"):
        keys.add_staff(home, secrets, "system", OTHER_PASSPHRASE)
    keys.remove_staff(home, secrets, "alice")
    assert keys.list_staff(home) == ["dr.martin"]
    with pytest.raises(StaffError, match="last keyslot"):
        keys.remove_staff(home, secrets, "dr.martin")
    with pytest.raises(StaffError, match="no keyslot"):
        keys.remove_staff(home, secrets, "alice")


def test_open_without_init_is_not_initialized(tmp_path: Path) -> None:
    with pytest.raises(NotInitialized):
        keys.open_keyslot(tmp_path, "alice", PASSPHRASE)


def test_trust_replaces_or_adds(tmp_path: Path, home: Path) -> None:
    first = keys.generate_publisher_key(tmp_path / "p1")
    second = keys.generate_publisher_key(tmp_path / "p2")
    assert keys.trust_publisher(home, tmp_path / "p1" / "publisher.pub") == first
    keys.trust_publisher(home, tmp_path / "p2" / "publisher.pub", replace=False)
    assert {keys.fingerprint(bytes(k)) for k in keys.trusted_publishers(home)} == {first, second}
    keys.trust_publisher(home, tmp_path / "p2" / "publisher.pub")
    assert [keys.fingerprint(bytes(k)) for k in keys.trusted_publishers(home)] == [second]
