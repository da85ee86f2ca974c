"""Keys: the publisher's signing key, the appliance keypairs, staff keyslots (argon2id), pinned publishers.

File formats and the keyslot construction are specified in docs/snapshot-format.md §6 and §8.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.bindings
import nacl.exceptions
import nacl.pwhash
import nacl.signing
import nacl.utils
from nacl.public import PrivateKey, PublicKey

from continuity import files, strict_json
from continuity.errors import AuthenticationError, KeyslotError, NotInitialized, StaffError, StoreError

log = logging.getLogger(__name__)

PUBLISHER_SECRET_PREFIX = "continuity-publisher-secret-v1"
PUBLISHER_PUBLIC_PREFIX = "continuity-publisher-v1"
APPLIANCE_PUBLIC_PREFIX = "continuity-appliance-v1"
APPLIANCE_SIGN_PREFIX = "continuity-appliance-sign-v1"

APPLIANCE_PUB = "appliance.pub"
APPLIANCE_SIGN_PUB = "appliance.sign.pub"
KEYSLOTS = "keyslots"
TRUSTED = "trusted"

MIN_PASSPHRASE_LENGTH = 12
USER_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")

KDF_ALG = "argon2id13"
# Defaults and minimums are libsodium's MODERATE limits (3 passes, 256 MiB, about 0.7 s on a 2-core PC).
DEFAULT_OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_MODERATE
DEFAULT_MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_MODERATE
# A forged slot must not make unlock hang or swap: parameters above these are refused.
MAX_OPSLIMIT = 16
MAX_MEMLIMIT = 1 << 30
SALT_BYTES = nacl.pwhash.argon2id.SALTBYTES
NONCE_BYTES = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
SECRET_BYTES = 64  # X25519 private key || Ed25519 seed
MAX_SLOT_FILE = 4096

# Test-only switch (docs/snapshot-format.md §8): MIN limits so the suite does not spend 0.7 s per slot.
WEAK_KDF_ENV = "CONTINUITY_TEST_WEAK_KDF"


@dataclass(frozen=True)
class KdfLimits:
    opslimit: int
    memlimit: int


MODERATE = KdfLimits(DEFAULT_OPSLIMIT, DEFAULT_MEMLIMIT)
WEAK_FOR_TESTS = KdfLimits(nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN)


def _weak_kdf_enabled() -> bool:
    if os.environ.get(WEAK_KDF_ENV) == "1":
        log.warning("%s=1: weak key derivation for tests, never use this on an appliance", WEAK_KDF_ENV)
        return True
    return False


def default_limits() -> KdfLimits:
    return WEAK_FOR_TESTS if _weak_kdf_enabled() else MODERATE


@dataclass(frozen=True)
class ApplianceSecrets:
    """What a keyslot unwraps: the snapshot decryption key and the journal signing key."""

    box_key: PrivateKey
    signing_key: nacl.signing.SigningKey

    def to_bytes(self) -> bytes:
        return bytes(self.box_key) + bytes(self.signing_key)

    @classmethod
    def from_bytes(cls, data: bytes) -> ApplianceSecrets:
        if len(data) != SECRET_BYTES:
            raise KeyslotError(f"keyslot secret has {len(data)} bytes, expected {SECRET_BYTES}")
        return cls(PrivateKey(data[:32]), nacl.signing.SigningKey(data[32:]))

    @classmethod
    def generate(cls) -> ApplianceSecrets:
        return cls(PrivateKey.generate(), nacl.signing.SigningKey.generate())


# --- ids and fingerprints -------------------------------------------------------------------------


def key_id(key_bytes: bytes) -> bytes:
    """The 16-byte id of a public key, as written in snapshot headers and signature entries."""
    return hashlib.sha256(key_bytes).digest()[:16]


def fingerprint(key_bytes: bytes) -> str:
    """A short, human-checkable fingerprint: 80 bits of SHA-256 in base32, as ABCD-EFGH-IJKL-MNOP."""
    text = base64.b32encode(hashlib.sha256(key_bytes).digest()[:10]).decode("ascii")
    return "-".join(text[i : i + 4] for i in range(0, 16, 4))


# --- one-line key files ---------------------------------------------------------------------------


def _encode_key_line(prefix: str, key_bytes: bytes) -> str:
    return f"{prefix}:{base64.b64encode(key_bytes).decode('ascii')}\n"


def _decode_key_line(path: Path, prefix: str) -> bytes:
    try:
        with path.open("rb") as handle:
            raw = handle.read(1024)
    except FileNotFoundError as error:
        raise NotInitialized(f"{path}: no such key file", message_fr=f"Fichier de clé absent : {path}") from error
    except OSError as error:
        raise KeyslotError(f"{path}: cannot read ({error.strerror})") from error
    text = raw.decode("ascii", errors="replace").strip()
    found, sep, value = text.partition(":")
    if not sep or found != prefix:
        raise KeyslotError(
            f"{path}: not a {prefix} key (found {found[:40]!r})",
            message_fr=f"Ce fichier n'est pas une clé du bon type : {path}",
        )
    try:
        key = base64.b64decode(value, validate=True)
    except binascii.Error as error:
        raise KeyslotError(f"{path}: key is not valid base64") from error
    if len(key) != 32:
        raise KeyslotError(f"{path}: key has {len(key)} bytes, expected 32")
    return key


def _write_private(path: Path, data: bytes) -> None:
    """Create a file only its owner can read, never overwriting an existing one."""
    try:
        files.create_exclusive(path, data, 0o600)
    except FileExistsError as error:
        raise StaffError(
            f"{path} already exists: refusing to overwrite it (an earlier init or add may have been interrupted)",
            message_fr=f"Le fichier existe déjà : {path}",
        ) from error
    except OSError as error:
        raise StoreError(f"{path}: cannot create ({error.strerror})") from error


def _write_replace(path: Path, data: bytes, mode: int = 0o644) -> None:
    try:
        files.write_atomic(path, data, mode)
    except OSError as error:
        raise StoreError(f"{path}: cannot write ({error.strerror})") from error


def generate_publisher_key(out_dir: Path) -> str:
    """Write `publisher.key` (0600) and `publisher.pub` in out_dir; return the fingerprint."""
    out_dir.mkdir(parents=True, exist_ok=True)
    secret_path, public_path = out_dir / "publisher.key", out_dir / "publisher.pub"
    if secret_path.exists() or public_path.exists():
        raise StaffError(
            f"{out_dir} already holds a publisher key: refusing to overwrite it",
            message_fr="Une clé d'éditeur existe déjà dans ce dossier : elle n'est pas écrasée.",
        )
    signing_key = nacl.signing.SigningKey.generate()
    verify_bytes = bytes(signing_key.verify_key)
    _write_private(secret_path, _encode_key_line(PUBLISHER_SECRET_PREFIX, bytes(signing_key)).encode())
    _write_replace(public_path, _encode_key_line(PUBLISHER_PUBLIC_PREFIX, verify_bytes).encode())
    return fingerprint(verify_bytes)


def load_publisher_signing_key(path: Path) -> nacl.signing.SigningKey:
    """Load `publisher.key` from a file or from the directory given to `publisher keygen --out`."""
    if path.is_dir():
        path = path / "publisher.key"
    return nacl.signing.SigningKey(_decode_key_line(path, PUBLISHER_SECRET_PREFIX))


def load_publisher_verify_key(path: Path) -> nacl.signing.VerifyKey:
    return nacl.signing.VerifyKey(_decode_key_line(path, PUBLISHER_PUBLIC_PREFIX))


def load_appliance_public_key(path: Path) -> PublicKey:
    """An appliance's X25519 public key file (a publish recipient)."""
    return PublicKey(_decode_key_line(path, APPLIANCE_PUBLIC_PREFIX))


# --- appliance ------------------------------------------------------------------------------------


def appliance_public_key(home: Path) -> PublicKey:
    """The appliance X25519 public key (seal to it while locked, e.g. journal details)."""
    return PublicKey(_decode_key_line(home / APPLIANCE_PUB, APPLIANCE_PUBLIC_PREFIX))


def appliance_verify_key(home: Path) -> nacl.signing.VerifyKey:
    """The appliance Ed25519 verify key (checks the journal's signed checkpoints)."""
    return nacl.signing.VerifyKey(_decode_key_line(home / APPLIANCE_SIGN_PUB, APPLIANCE_SIGN_PREFIX))


RESERVED_USERS = frozenset({"system"})  # the journal's name for unattended jobs


def check_user(user: str) -> str:
    if user in RESERVED_USERS:
        raise StaffError(f"user name {user!r} is reserved", message_fr=f"Le nom « {user} » est réservé.")
    if not USER_PATTERN.fullmatch(user):
        raise StaffError(
            f"invalid user name {user!r}: use 1-32 of a-z 0-9 . _ - (starting with a letter or digit)",
            message_fr="Nom d'utilisateur invalide : lettres minuscules, chiffres, « . _ - » (32 au plus).",
        )
    return user


def check_passphrase(passphrase: str) -> str:
    if len(passphrase) < MIN_PASSPHRASE_LENGTH:
        raise StaffError(
            f"passphrase too short: at least {MIN_PASSPHRASE_LENGTH} characters",
            message_fr=f"Phrase de passe trop courte : au moins {MIN_PASSPHRASE_LENGTH} caractères.",
        )
    return passphrase


def _normalize(passphrase: str) -> bytes:
    # The same passphrase typed on two keyboards must give the same bytes (é precomposed or not).
    return unicodedata.normalize("NFC", passphrase).encode("utf-8")


def _slot_path(home: Path, user: str) -> Path:
    return home / KEYSLOTS / f"{check_user(user)}.json"


def _slot_aad(descriptor: dict[str, Any]) -> bytes:
    return json.dumps(descriptor, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _derive(passphrase: str, salt: bytes, limits: KdfLimits) -> bytes:
    return bytes(
        nacl.pwhash.argon2id.kdf(32, _normalize(passphrase), salt, opslimit=limits.opslimit, memlimit=limits.memlimit)
    )


def make_keyslot(user: str, passphrase: str, secrets: ApplianceSecrets, limits: KdfLimits | None = None) -> bytes:
    """The JSON bytes of a keyslot wrapping `secrets` for `user` (§8)."""
    limits = limits or default_limits()
    salt = nacl.utils.random(SALT_BYTES)
    descriptor: dict[str, Any] = {
        "format": "continuity-keyslot",
        "version": 1,
        "user": check_user(user),
        "kdf": {
            "alg": KDF_ALG,
            "opslimit": limits.opslimit,
            "memlimit": limits.memlimit,
            "salt": base64.b64encode(salt).decode("ascii"),
        },
    }
    nonce = nacl.utils.random(NONCE_BYTES)
    wrapping_key = _derive(passphrase, salt, limits)
    ciphertext = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        secrets.to_bytes(), _slot_aad(descriptor), nonce, wrapping_key
    )
    slot = dict(descriptor)
    slot["nonce"] = base64.b64encode(nonce).decode("ascii")
    slot["ciphertext"] = base64.b64encode(ciphertext).decode("ascii")
    return (json.dumps(slot, sort_keys=True, indent=1) + "\n").encode("utf-8")


def _b64(value: object, size: int, what: str) -> bytes:
    if not isinstance(value, str):
        raise KeyslotError(f"keyslot {what} is not a string")
    try:
        data = base64.b64decode(value, validate=True)
    except binascii.Error as error:
        raise KeyslotError(f"keyslot {what} is not valid base64") from error
    if len(data) != size:
        raise KeyslotError(f"keyslot {what} has {len(data)} bytes, expected {size}")
    return data


def _int(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise KeyslotError(f"keyslot {what} is not an integer")
    return value


def _read_slot(path: Path, user: str) -> tuple[dict[str, Any], KdfLimits, bytes, bytes, bytes]:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_SLOT_FILE + 1)
    except OSError as error:
        raise KeyslotError(f"{path}: cannot read ({error.strerror})") from error
    if len(raw) > MAX_SLOT_FILE:
        raise KeyslotError(f"{path}: keyslot larger than {MAX_SLOT_FILE} bytes")
    try:
        slot = json.loads(raw.decode("utf-8"), object_pairs_hook=strict_json.object_without_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise KeyslotError(f"{path}: keyslot is not valid JSON ({error})") from error
    if not isinstance(slot, dict):
        raise KeyslotError(f"{path}: keyslot is not a JSON object")
    expected = {"format", "version", "user", "kdf", "nonce", "ciphertext"}
    if set(slot) != expected:
        raise KeyslotError(f"{path}: keyslot fields {sorted(slot)} are not {sorted(expected)}")
    if slot["format"] != "continuity-keyslot" or slot["version"] != 1:
        raise KeyslotError(f"{path}: unsupported keyslot format {slot['format']!r} v{slot['version']!r}")
    if slot["user"] != user:
        # A slot copied under another name must not open as that user.
        raise KeyslotError(f"{path}: keyslot belongs to {slot['user']!r}, not {user!r}")
    kdf = slot["kdf"]
    if not isinstance(kdf, dict) or set(kdf) != {"alg", "opslimit", "memlimit", "salt"}:
        raise KeyslotError(f"{path}: keyslot kdf parameters malformed")
    if kdf["alg"] != KDF_ALG:
        raise KeyslotError(f"{path}: unsupported key derivation {kdf['alg']!r}")
    limits = KdfLimits(_int(kdf["opslimit"], "opslimit"), _int(kdf["memlimit"], "memlimit"))
    floor = WEAK_FOR_TESTS if _weak_kdf_enabled() else MODERATE
    if limits.opslimit < floor.opslimit or limits.memlimit < floor.memlimit:
        raise KeyslotError(f"{path}: key derivation parameters {limits} below the minimum {floor}")
    if limits.opslimit > MAX_OPSLIMIT or limits.memlimit > MAX_MEMLIMIT:
        raise KeyslotError(f"{path}: key derivation parameters {limits} above the maximum")
    salt = _b64(kdf["salt"], SALT_BYTES, "salt")
    nonce = _b64(slot["nonce"], NONCE_BYTES, "nonce")
    ciphertext = _b64(slot["ciphertext"], SECRET_BYTES + 16, "ciphertext")
    descriptor = {key: slot[key] for key in ("format", "version", "user", "kdf")}
    return descriptor, limits, salt, nonce, ciphertext


def open_keyslot(home: Path, user: str, passphrase: str) -> ApplianceSecrets:
    """Open `user`'s keyslot with their passphrase. Raises AuthenticationError or KeyslotError."""
    path = _slot_path(home, user)
    if not (home / APPLIANCE_PUB).exists():
        raise NotInitialized(f"{home}: no appliance key (run `continuity init`)")
    if not path.is_file():
        # Same message and about the same delay as a wrong passphrase: nothing tells which names exist.
        _derive(passphrase, bytes(SALT_BYTES), default_limits())
        raise AuthenticationError(f"no keyslot for user {user!r}")
    descriptor, limits, salt, nonce, ciphertext = _read_slot(path, user)
    wrapping_key = _derive(passphrase, salt, limits)
    try:
        plaintext = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            ciphertext, _slot_aad(descriptor), nonce, wrapping_key
        )
    except nacl.exceptions.CryptoError as error:
        raise AuthenticationError(f"keyslot of {user!r} does not open: wrong passphrase or altered slot") from error
    secrets = ApplianceSecrets.from_bytes(plaintext)
    if bytes(secrets.box_key.public_key) != bytes(appliance_public_key(home)) or bytes(
        secrets.signing_key.verify_key
    ) != bytes(appliance_verify_key(home)):
        raise KeyslotError(f"keyslot of {user!r} holds keys of another appliance")
    return secrets


def list_staff(home: Path) -> list[str]:
    directory = home / KEYSLOTS
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("*.json") if USER_PATTERN.fullmatch(p.stem))


def init_appliance(home: Path, user: str, passphrase: str, limits: KdfLimits | None = None) -> ApplianceSecrets:
    """Create the appliance keypairs and the first staff keyslot. Refuses an already initialised home."""
    check_user(user)
    check_passphrase(passphrase)
    if (home / APPLIANCE_PUB).exists():
        raise StaffError(
            f"{home} is already initialised (appliance.pub exists)",
            message_fr="Ce poste est déjà configuré.",
        )
    home.mkdir(parents=True, exist_ok=True)
    (home / KEYSLOTS).mkdir(mode=0o700, exist_ok=True)
    secrets = ApplianceSecrets.generate()
    # The slot first: a home with a public key but no slot would be unusable.
    _write_private(_slot_path(home, user), make_keyslot(user, passphrase, secrets, limits))
    _write_replace(
        home / APPLIANCE_SIGN_PUB,
        _encode_key_line(APPLIANCE_SIGN_PREFIX, bytes(secrets.signing_key.verify_key)).encode(),
    )
    _write_replace(
        home / APPLIANCE_PUB, _encode_key_line(APPLIANCE_PUBLIC_PREFIX, bytes(secrets.box_key.public_key)).encode()
    )
    return secrets


def add_staff(
    home: Path, secrets: ApplianceSecrets, user: str, passphrase: str, limits: KdfLimits | None = None
) -> Path:
    """Wrap the (already unlocked) appliance secrets for a new staff member."""
    check_passphrase(passphrase)
    path = _slot_path(home, user)
    if path.exists():
        raise StaffError(f"user {user!r} already has a keyslot", message_fr=f"« {user} » existe déjà.")
    _write_private(path, make_keyslot(user, passphrase, secrets, limits))
    return path


def remove_staff(home: Path, user: str) -> None:
    path = _slot_path(home, user)
    staff = list_staff(home)
    if user not in staff:
        raise StaffError(f"no keyslot for user {user!r}", message_fr=f"« {user} » n'existe pas.")
    if len(staff) == 1:
        raise StaffError(
            "refusing to remove the last keyslot: the snapshots could never be opened again",
            message_fr="Impossible de supprimer le dernier accès : plus personne ne pourrait ouvrir les données.",
        )
    path.unlink()
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# --- pinned publishers ----------------------------------------------------------------------------


def trust_publisher(home: Path, key_file: Path, *, replace: bool = True) -> str:
    """Pin a publisher verify key; `replace` unpins the others. Returns the fingerprint."""
    verify_key = load_publisher_verify_key(key_file)
    key_bytes = bytes(verify_key)
    directory = home / TRUSTED
    directory.mkdir(parents=True, exist_ok=True)
    name = fingerprint(key_bytes)
    _write_replace(directory / f"{name}.pub", _encode_key_line(PUBLISHER_PUBLIC_PREFIX, key_bytes).encode())
    if replace:
        for other in directory.glob("*.pub"):
            if other.name != f"{name}.pub":
                other.unlink()
    return name


def trusted_publishers(home: Path) -> list[nacl.signing.VerifyKey]:
    directory = home / TRUSTED
    if not directory.is_dir():
        return []
    return [load_publisher_verify_key(path) for path in sorted(directory.glob("*.pub"))]


def fingerprints(keys: Iterable[bytes]) -> list[str]:
    return [fingerprint(key) for key in keys]
