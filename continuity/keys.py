"""Keys: the publisher's signing key, the appliance keypairs, staff keyslots and roles, pinned publishers.

File formats, the keyslot construction and the signed staff roster are specified in
docs/snapshot-format.md §6 and §8; who each part protects against is in docs/threat-model.md.

In short: a staff member's passphrase (argon2id) opens their own keyslot, which holds their personal
X25519 key; the appliance secrets are *granted* to that personal key (a SealedBox), so a key rotation
re-grants them to the remaining staff without anyone's passphrase. Roles live in the roster
(`staff.json`), signed by the administration key that only prescribers' grants carry: a receptionist,
who holds the same appliance secrets, can neither promote themself nor add, remove or restore a slot.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import json
import logging
import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import nacl.bindings
import nacl.exceptions
import nacl.pwhash
import nacl.signing
import nacl.utils
from nacl.public import PrivateKey, PublicKey, SealedBox

from continuity import files, strict_json
from continuity.errors import (
    AuthenticationError,
    KeyslotError,
    KeyslotRefused,
    NotInitialized,
    StaffError,
    StoreError,
)

log = logging.getLogger(__name__)

PUBLISHER_SECRET_PREFIX = "continuity-publisher-secret-v1"
PUBLISHER_PUBLIC_PREFIX = "continuity-publisher-v1"
APPLIANCE_PUBLIC_PREFIX = "continuity-appliance-v1"
APPLIANCE_SIGN_PREFIX = "continuity-appliance-sign-v1"
ADMIN_PREFIX = "continuity-admin-v1"

APPLIANCE_PUB = "appliance.pub"
APPLIANCE_SIGN_PUB = "appliance.sign.pub"
ADMIN_PUB = "admin.pub"
ROSTER = "staff.json"
ARCHIVE = "previous-keys.json"  # earlier appliance box keys, sealed to the current one (after rotations)
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
ADMIN_SECRET_BYTES = SECRET_BYTES + 32  # ... || administration Ed25519 seed (prescribers only)
MEMBER_KEY_BYTES = 32  # a staff member's personal X25519 private key, what the passphrase unwraps
SLOT_VERSION = 2
MAX_SLOT_FILE = 4096
MAX_ROSTER_FILE = 256 * 1024
MAX_STAFF = 200
ROSTER_PURPOSE = "continuity-staff-roster-v1"

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


class Role(enum.StrEnum):
    """What a staff member may do. Reception searches, reads and prints summaries; a prescriber also
    issues ordonnances and manages staff."""

    PRESCRIBER = "prescriber"
    RECEPTION = "reception"


ROLE_LABELS_FR = {Role.PRESCRIBER: "prescripteur", Role.RECEPTION: "accueil"}


@dataclass(frozen=True)
class StaffMember:
    """A person who can unlock the appliance: login, role, and RPPS (prescribers only, else "")."""

    name: str
    role: Role
    rpps: str = ""

    @property
    def is_prescriber(self) -> bool:
        return self.role is Role.PRESCRIBER

    @property
    def role_fr(self) -> str:
        return ROLE_LABELS_FR[self.role]


@dataclass(frozen=True)
class ApplianceSecrets:
    """What a keyslot's grant holds: the snapshot decryption key, the journal signing key and, for
    prescribers, the administration key that signs the staff roster."""

    box_key: PrivateKey
    signing_key: nacl.signing.SigningKey
    admin_key: nacl.signing.SigningKey | None = None
    # Box keys of this appliance before its rotations, newest first (previous-keys.json): snapshots
    # sealed before the publisher switched and older journal details stay readable.
    previous_box_keys: tuple[PrivateKey, ...] = ()

    @property
    def all_box_keys(self) -> tuple[PrivateKey, ...]:
        return (self.box_key, *self.previous_box_keys)

    def box_key_for(self, recipient_key_ids: Iterable[bytes]) -> PrivateKey:
        """The box key a file was sealed to (the current one when none matches: the error says so)."""
        wanted = set(recipient_key_ids)
        return next((key for key in self.all_box_keys if key_id(bytes(key.public_key)) in wanted), self.box_key)

    def to_bytes(self) -> bytes:
        admin = bytes(self.admin_key) if self.admin_key is not None else b""
        return bytes(self.box_key) + bytes(self.signing_key) + admin

    def without_admin(self) -> ApplianceSecrets:
        return replace(self, admin_key=None, previous_box_keys=())

    @classmethod
    def from_bytes(cls, data: bytes) -> ApplianceSecrets:
        if len(data) not in (SECRET_BYTES, ADMIN_SECRET_BYTES):
            raise KeyslotError(f"keyslot secret has {len(data)} bytes, expected {SECRET_BYTES} or {ADMIN_SECRET_BYTES}")
        admin = nacl.signing.SigningKey(data[64:]) if len(data) == ADMIN_SECRET_BYTES else None
        return cls(PrivateKey(data[:32]), nacl.signing.SigningKey(data[32:64]), admin)

    @classmethod
    def generate(cls) -> ApplianceSecrets:
        return cls(PrivateKey.generate(), nacl.signing.SigningKey.generate(), nacl.signing.SigningKey.generate())


@dataclass(frozen=True)
class OpenedSlot:
    """A successful unlock: who it is (role and RPPS as the signed roster lists them) and the secrets."""

    member: StaffMember
    secrets: ApplianceSecrets
    roster_serial: int = 0  # the version of the signed roster it was checked against (journaled at unlock)

    @property
    def can_manage_staff(self) -> bool:
        """True when this slot released the current administration key (prescribers; the first member
        until the first prescriber is enrolled)."""
        return self.secrets.admin_key is not None


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


def key_line(prefix: str, key_bytes: bytes) -> bytes:
    """A one-line key file's content (§6)."""
    return _encode_key_line(prefix, key_bytes).encode()


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


def load_appliance_verify_key(path: Path) -> nacl.signing.VerifyKey:
    """An appliance's journal verify key file (`appliance.sign.pub`, enrolled with the publisher's witness)."""
    return nacl.signing.VerifyKey(_decode_key_line(path, APPLIANCE_SIGN_PREFIX))


# --- appliance ------------------------------------------------------------------------------------


def appliance_public_key(home: Path) -> PublicKey:
    """The appliance X25519 public key (seal to it while locked, e.g. journal details)."""
    return PublicKey(_decode_key_line(home / APPLIANCE_PUB, APPLIANCE_PUBLIC_PREFIX))


def appliance_verify_key(home: Path) -> nacl.signing.VerifyKey:
    """The appliance Ed25519 verify key (checks the journal's signed checkpoints)."""
    return nacl.signing.VerifyKey(_decode_key_line(home / APPLIANCE_SIGN_PUB, APPLIANCE_SIGN_PREFIX))


def admin_verify_key(home: Path) -> nacl.signing.VerifyKey:
    """The administration Ed25519 verify key (checks the staff roster)."""
    return nacl.signing.VerifyKey(_decode_key_line(home / ADMIN_PUB, ADMIN_PREFIX))


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


MIN_PASSPHRASE_SCORE = 3  # zxcvbn: 3 = "safely unguessable", with argon2id making each guess costly
# zxcvbn knows English words; these are what a French practice would reach for first.
PRACTICE_WORDS = (
    "continuity", "continuite", "accueil", "secretariat", "secretaire", "cabinet", "medecin", "medical",
    "docteur", "ordonnance", "patient", "urgence", "sante", "infirmier", "demo", "motdepasse", "azerty",
    "soleil", "bonjour", "doudou", "loulou", "chouchou", "marseille", "paris", "france", "amour",
)  # fmt: skip
_WEAK_PARTS_FR = {
    "repeat": "des répétitions (« aaaa », « abcabc »)",
    "sequence": "des suites (« abcd », « 1234 »)",
    "spatial": "une suite de touches du clavier (« azerty », « qsdf »)",
    "date": "une date ou une année",
    "passwords": "un mot de passe très courant",
    "user_inputs": "un mot lié au cabinet, à ce logiciel ou à votre nom",
}


def _plain(text: str) -> str:
    """Lowercase, accents and separators removed: "Dr. Garnier" and "drgarnier" compare equal."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if ch.isalnum())


def check_passphrase(passphrase: str, user: str | None = None) -> str:
    """Refuse a passphrase that is short, contains the login, or is easy to guess (zxcvbn), in French."""
    if len(passphrase) < MIN_PASSPHRASE_LENGTH:
        raise StaffError(
            f"passphrase too short: at least {MIN_PASSPHRASE_LENGTH} characters",
            message_fr=f"Phrase de passe trop courte : au moins {MIN_PASSPHRASE_LENGTH} caractères.",
        )
    names = [part for part in re.split(r"[._-]", user or "") if len(part) >= 3] + ([user] if user else [])
    plain = _plain(passphrase)
    if any(_plain(name) and _plain(name) in plain for name in names):
        raise StaffError(
            "passphrase contains the user name",
            message_fr="La phrase de passe contient votre nom d'utilisateur : choisissez-en une autre.",
        )
    from zxcvbn import zxcvbn  # lazily: its dictionaries take a moment to load

    result = zxcvbn(passphrase[:100], user_inputs=[*names, *PRACTICE_WORDS])
    if result["score"] < MIN_PASSPHRASE_SCORE:
        kinds = []
        for match in result["sequence"]:
            kind = match.get("dictionary_name") if match.get("pattern") == "dictionary" else match.get("pattern")
            if kind in _WEAK_PARTS_FR and _WEAK_PARTS_FR[kind] not in kinds:
                kinds.append(_WEAK_PARTS_FR[kind])
        why = f" : elle contient {', '.join(kinds)}" if kinds else ""
        raise StaffError(
            f"passphrase too easy to guess (zxcvbn score {result['score']}, minimum {MIN_PASSPHRASE_SCORE})",
            message_fr=(
                f"Phrase de passe trop facile à deviner{why}. Choisissez trois ou quatre mots sans lien entre "
                "eux, par exemple « lampe girafe tambour », sans votre nom ni celui du cabinet."
            ),
        )
    return passphrase


def rpps_is_valid(rpps: str) -> bool:
    """An RPPS number: 11 digits whose last one is the Luhn key of the first ten."""
    if len(rpps) != 11 or not rpps.isascii() or not rpps.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(rpps)):
        digit = int(char)
        if position % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def make_member(user: str, role: Role | str = Role.RECEPTION, rpps: str | None = None) -> StaffMember:
    """Check and build a staff member: a prescriber has a valid RPPS, reception has none."""
    check_user(user)
    try:
        role = Role(role)
    except ValueError as error:
        raise StaffError(
            f"unknown role {role!r}: prescriber or reception",
            message_fr="Rôle inconnu : « prescriber » (prescripteur) ou « reception » (accueil).",
        ) from error
    rpps = (rpps or "").replace(" ", "")
    if role is Role.PRESCRIBER:
        if not rpps:
            raise StaffError(
                "a prescriber needs an RPPS number (--rpps)",
                message_fr="Un prescripteur doit avoir son numéro RPPS (--rpps, 11 chiffres).",
            )
        if not rpps_is_valid(rpps):
            raise StaffError(
                f"invalid RPPS {rpps!r}: 11 digits with a valid check digit expected",
                message_fr=f"Numéro RPPS invalide « {rpps} » : 11 chiffres attendus (vérifiez la saisie).",
            )
    elif rpps:
        raise StaffError(
            "reception staff have no RPPS",
            message_fr=(
                "Le personnel d'accueil n'a pas de numéro RPPS : retirez --rpps ou choisissez --role prescriber."
            ),
        )
    return StaffMember(user, role, rpps)


def _normalize(passphrase: str) -> bytes:
    # The same passphrase typed on two keyboards must give the same bytes (é precomposed or not).
    return unicodedata.normalize("NFC", passphrase).encode("utf-8")


def _slot_path(home: Path, user: str) -> Path:
    return home / KEYSLOTS / f"{check_user(user)}.json"


def canonical(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: what is authenticated, signed and hashed."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _derive(passphrase: str, salt: bytes, limits: KdfLimits) -> bytes:
    return bytes(
        nacl.pwhash.argon2id.kdf(32, _normalize(passphrase), salt, opslimit=limits.opslimit, memlimit=limits.memlimit)
    )


def _b64text(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- keyslots -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Slot:
    """A parsed keyslot file (§8). `digest` covers everything the passphrase protects, not the grant."""

    descriptor: dict[str, Any]
    limits: KdfLimits
    salt: bytes
    nonce: bytes
    ciphertext: bytes
    member_key: bytes
    grant: bytes

    @property
    def member(self) -> StaffMember:
        return StaffMember(self.descriptor["user"], Role(self.descriptor["role"]), self.descriptor["rpps"])

    @property
    def digest(self) -> str:
        return slot_digest(self.descriptor, self.nonce, self.ciphertext)


def slot_digest(descriptor: dict[str, Any], nonce: bytes, ciphertext: bytes) -> str:
    return hashlib.sha256(canonical(descriptor) + nonce + ciphertext).hexdigest()


def _grant(member_key: PublicKey, secrets: ApplianceSecrets) -> bytes:
    return SealedBox(member_key).encrypt(secrets.to_bytes())


def make_keyslot(
    member: StaffMember, passphrase: str, secrets: ApplianceSecrets, limits: KdfLimits | None = None
) -> tuple[bytes, _Slot]:
    """The JSON bytes of a new keyslot for `member` (§8), granting them `secrets`, and its parsed form."""
    limits = limits or default_limits()
    personal = PrivateKey.generate()
    salt = nacl.utils.random(SALT_BYTES)
    descriptor: dict[str, Any] = {
        "format": "continuity-keyslot",
        "version": SLOT_VERSION,
        "user": check_user(member.name),
        "role": member.role.value,
        "rpps": member.rpps,
        "member_key": _b64text(bytes(personal.public_key)),
        "kdf": {
            "alg": KDF_ALG,
            "opslimit": limits.opslimit,
            "memlimit": limits.memlimit,
            "salt": _b64text(salt),
        },
    }
    nonce = nacl.utils.random(NONCE_BYTES)
    wrapping_key = _derive(passphrase, salt, limits)
    ciphertext = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        bytes(personal), canonical(descriptor), nonce, wrapping_key
    )
    grant = _grant(personal.public_key, secrets)
    slot = _Slot(descriptor, limits, salt, nonce, ciphertext, bytes(personal.public_key), grant)
    return _slot_bytes(slot), slot


def _slot_bytes(slot: _Slot) -> bytes:
    content = dict(slot.descriptor)
    content["nonce"] = _b64text(slot.nonce)
    content["ciphertext"] = _b64text(slot.ciphertext)
    content["grant"] = _b64text(slot.grant)
    return (json.dumps(content, sort_keys=True, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def _b64(value: object, size: int | tuple[int, ...], what: str) -> bytes:
    if not isinstance(value, str):
        raise KeyslotError(f"keyslot {what} is not a string")
    try:
        data = base64.b64decode(value, validate=True)
    except binascii.Error as error:
        raise KeyslotError(f"keyslot {what} is not valid base64") from error
    sizes = size if isinstance(size, tuple) else (size,)
    if len(data) not in sizes:
        raise KeyslotError(f"keyslot {what} has {len(data)} bytes, expected {' or '.join(map(str, sizes))}")
    return data


def _int(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise KeyslotError(f"keyslot {what} is not an integer")
    return value


_SEAL_OVERHEAD = 48  # SealedBox: ephemeral public key (32) + MAC (16)
_SLOT_FIELDS = {"format", "version", "user", "role", "rpps", "member_key", "kdf", "nonce", "ciphertext", "grant"}


def _read_slot(path: Path, user: str) -> _Slot:
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
    if slot.get("format") == "continuity-keyslot" and slot.get("version") == 1:
        raise KeyslotError(
            f"{path}: keyslot format v1 (before staff roles): re-create the appliance home",
            message_fr="Ce trousseau date d'une version sans rôles du personnel : le poste doit être réinstallé.",
        )
    if set(slot) != _SLOT_FIELDS:
        raise KeyslotError(f"{path}: keyslot fields {sorted(slot)} are not {sorted(_SLOT_FIELDS)}")
    if slot["format"] != "continuity-keyslot" or slot["version"] != SLOT_VERSION:
        raise KeyslotError(f"{path}: unsupported keyslot format {slot['format']!r} v{slot['version']!r}")
    if slot["user"] != user:
        # A slot copied under another name must not open as that user.
        raise KeyslotError(f"{path}: keyslot belongs to {slot['user']!r}, not {user!r}")
    if slot["role"] not in {role.value for role in Role} or not isinstance(slot["rpps"], str):
        raise KeyslotError(f"{path}: keyslot role or rpps malformed")
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
    ciphertext = _b64(slot["ciphertext"], MEMBER_KEY_BYTES + 16, "ciphertext")
    member_key = _b64(slot["member_key"], 32, "member_key")
    grant = _b64(slot["grant"], (SECRET_BYTES + _SEAL_OVERHEAD, ADMIN_SECRET_BYTES + _SEAL_OVERHEAD), "grant")
    descriptor = {key: slot[key] for key in ("format", "version", "user", "role", "rpps", "member_key", "kdf")}
    return _Slot(descriptor, limits, salt, nonce, ciphertext, member_key, grant)


# --- the staff roster -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RosterEntry:
    member: StaffMember
    member_key: bytes  # the member's personal X25519 public key (grants are sealed to it)
    slot: str  # slot_digest of their keyslot: a restored or replaced file does not match

    def to_json(self) -> dict[str, Any]:
        return {
            "user": self.member.name,
            "role": self.member.role.value,
            "rpps": self.member.rpps,
            "member_key": _b64text(self.member_key),
            "slot": self.slot,
        }


@dataclass(frozen=True)
class Roster:
    """The signed list of who may unlock and with which role (`staff.json`, §8)."""

    serial: int
    appliance: str  # key id (hex) of the appliance box key the roster belongs to
    admin_key: bytes  # the administration verify key that signs it
    entries: tuple[RosterEntry, ...]
    signature: bytes = b""  # as read from staff.json (read_roster), for the journal
    endorsement: bytes | None = None

    def signed_content(self) -> dict[str, Any]:
        return {
            "purpose": ROSTER_PURPOSE,
            "serial": self.serial,
            "appliance": self.appliance,
            "admin_key": _b64text(self.admin_key),
            "members": [entry.to_json() for entry in sorted(self.entries, key=lambda e: e.member.name)],
        }

    def signed_bytes(self) -> bytes:
        return canonical(self.signed_content())

    @property
    def digest(self) -> str:
        """What the journal records for each roster change (hex SHA-256 of the signed bytes)."""
        return hashlib.sha256(self.signed_bytes()).hexdigest()

    @property
    def members(self) -> list[StaffMember]:
        return [entry.member for entry in sorted(self.entries, key=lambda e: e.member.name)]

    def find(self, user: str) -> RosterEntry | None:
        return next((entry for entry in self.entries if entry.member.name == user), None)

    def prescribers(self) -> list[StaffMember]:
        return [member for member in self.members if member.is_prescriber]

    def with_entries(self, entries: Iterable[RosterEntry], *, admin_key: bytes | None = None) -> Roster:
        return Roster(self.serial + 1, self.appliance, admin_key or self.admin_key, tuple(entries))


def _roster_bytes(roster: Roster, admin: nacl.signing.SigningKey, endorsement: bytes | None) -> bytes:
    signed = roster.signed_bytes()
    document = dict(roster.signed_content())
    document["signature"] = _b64text(admin.sign(signed).signature)
    if endorsement is not None:
        document["endorsement"] = _b64text(endorsement)
    return (json.dumps(document, sort_keys=True, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def roster_file_bytes(
    roster: Roster, admin: nacl.signing.SigningKey, *, previous_admin: nacl.signing.SigningKey | None = None
) -> bytes:
    """`staff.json` for `roster`, signed by `admin` and endorsed by the previous administration key."""
    endorsement = previous_admin.sign(roster.signed_bytes()).signature if previous_admin is not None else None
    return _roster_bytes(roster, admin, endorsement)


def _roster_error(path: Path, reason: str) -> KeyslotError:
    return KeyslotError(
        f"{path}: {reason}",
        message_fr=(
            "La liste du personnel (staff.json) est absente, endommagée ou a été modifiée : "
            "personne ne peut se connecter. Appelez le support (« continuity doctor »)."
        ),
    )


def read_roster(home: Path) -> Roster:
    """The staff roster, checked: signed by the administration key of `admin.pub` (or endorsed by it,
    after a change of administration key), for this appliance's current key."""
    path = home / ROSTER
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_ROSTER_FILE + 1)
    except FileNotFoundError as error:
        raise _roster_error(path, "no staff roster") from error
    except OSError as error:
        raise _roster_error(path, f"cannot read ({error.strerror})") from error
    if len(raw) > MAX_ROSTER_FILE:
        raise _roster_error(path, f"larger than {MAX_ROSTER_FILE} bytes")
    try:
        document = json.loads(raw.decode("utf-8"), object_pairs_hook=strict_json.object_without_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise _roster_error(path, f"not valid JSON ({error})") from error
    fields = {"purpose", "serial", "appliance", "admin_key", "members", "signature"}
    if not isinstance(document, dict) or not fields <= set(document) <= fields | {"endorsement"}:
        raise _roster_error(path, "unexpected fields")
    try:
        roster = _parse_roster(document)
        signature = base64.b64decode(document["signature"], validate=True)
        endorsement = base64.b64decode(document["endorsement"], validate=True) if "endorsement" in document else None
    except (KeyError, TypeError, ValueError, binascii.Error, StaffError) as error:
        raise _roster_error(path, f"malformed ({error})") from error
    signed = roster.signed_bytes()
    if canonical({key: document[key] for key in fields - {"signature"}}) != signed:
        raise _roster_error(path, "members not in canonical order or malformed")
    try:
        nacl.signing.VerifyKey(roster.admin_key).verify(signed, signature)
    except (nacl.exceptions.BadSignatureError, ValueError) as error:
        raise _roster_error(path, "signature does not verify") from error
    anchored = admin_verify_key(home)
    if bytes(anchored) != roster.admin_key:
        # A change of administration key (first prescriber enrolled, key rotation) is endorsed by the
        # previous key; admin.pub catches up right after, and a crash in between is harmless.
        try:
            if endorsement is None:
                raise nacl.exceptions.BadSignatureError("no endorsement")
            anchored.verify(signed, endorsement)
        except (nacl.exceptions.BadSignatureError, ValueError) as error:
            raise _roster_error(path, "signed by another administration key than admin.pub") from error
    if roster.appliance != key_id(bytes(appliance_public_key(home))).hex():
        raise _roster_error(path, "roster of another appliance key (before a rotation, or another appliance)")
    return replace(roster, signature=signature, endorsement=endorsement)


def _parse_roster(document: dict[str, Any]) -> Roster:
    if document["purpose"] != ROSTER_PURPOSE:
        raise ValueError(f"purpose {document['purpose']!r}")
    serial = document["serial"]
    if not isinstance(serial, int) or isinstance(serial, bool) or serial < 1:
        raise ValueError("serial")
    appliance = document["appliance"]
    if not isinstance(appliance, str) or not re.fullmatch(r"[0-9a-f]{32}", appliance):
        raise ValueError("appliance key id")
    admin_key = base64.b64decode(document["admin_key"], validate=True)
    if len(admin_key) != 32:
        raise ValueError("admin key size")
    members = document["members"]
    if not isinstance(members, list) or not 1 <= len(members) <= MAX_STAFF:
        raise ValueError("members")
    entries = []
    for item in members:
        if not isinstance(item, dict) or set(item) != {"user", "role", "rpps", "member_key", "slot"}:
            raise ValueError("member fields")
        member = StaffMember(check_user(item["user"]), Role(item["role"]), str(item["rpps"]))
        member_key = base64.b64decode(item["member_key"], validate=True)
        if len(member_key) != 32 or not re.fullmatch(r"[0-9a-f]{64}", str(item["slot"])):
            raise ValueError("member key or slot digest")
        entries.append(RosterEntry(member, member_key, item["slot"]))
    if len({entry.member.name for entry in entries}) != len(entries):
        raise ValueError("a user is listed twice")
    return Roster(serial, appliance, admin_key, tuple(entries))


def _write_roster(
    home: Path,
    roster: Roster,
    admin: nacl.signing.SigningKey,
    *,
    previous_admin: nacl.signing.SigningKey | None = None,
) -> None:
    if bytes(admin.verify_key) != roster.admin_key:
        raise ValueError("the roster must be signed by the administration key it names")
    endorsement = previous_admin.sign(roster.signed_bytes()).signature if previous_admin is not None else None
    _write_replace(home / ROSTER, _roster_bytes(roster, admin, endorsement), 0o600)
    if previous_admin is not None:
        _write_replace(home / ADMIN_PUB, _encode_key_line(ADMIN_PREFIX, bytes(admin.verify_key)).encode())


def staff_roster(home: Path) -> list[StaffMember]:
    """The members of the signed roster, by name (KeyslotError if it does not verify)."""
    return read_roster(home).members


# --- opening a slot -------------------------------------------------------------------------------


def open_member(home: Path, user: str, passphrase: str) -> OpenedSlot:
    """Open `user`'s keyslot with their passphrase: who they are, with which role, and the secrets.

    Raises AuthenticationError (wrong passphrase or unknown user), KeyslotRefused (a slot the signed
    roster does not list as it is: removed member, restored or replaced file) or KeyslotError.
    """
    from continuity import rotation  # rotation builds on this module

    path = _slot_path(home, user)
    if not (home / APPLIANCE_PUB).exists():
        raise NotInitialized(f"{home}: no appliance key (run `continuity init`)")
    rotation.finish_interrupted(home)
    if not path.is_file():
        # Same message and about the same delay as a wrong passphrase: nothing tells which names exist.
        _derive(passphrase, bytes(SALT_BYTES), default_limits())
        raise AuthenticationError(f"no keyslot for user {user!r}")
    roster = read_roster(home)
    entry = roster.find(user)
    if entry is None:
        raise KeyslotRefused(
            f"keyslot of {user!r} is not in the signed staff roster (removed member, or a restored file)"
        )
    slot = _read_slot(path, user)
    if slot.digest != entry.slot or slot.member != entry.member or slot.member_key != entry.member_key:
        raise KeyslotRefused(f"keyslot of {user!r} is not the one the staff roster lists (replaced or restored file)")
    wrapping_key = _derive(passphrase, slot.salt, slot.limits)
    try:
        personal = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            slot.ciphertext, canonical(slot.descriptor), slot.nonce, wrapping_key
        )
    except nacl.exceptions.CryptoError as error:
        raise AuthenticationError(f"keyslot of {user!r} does not open: wrong passphrase") from error
    member_key = PrivateKey(personal)
    if bytes(member_key.public_key) != slot.member_key:
        raise KeyslotError(f"keyslot of {user!r}: personal key does not match its public half")
    return OpenedSlot(entry.member, _open_grant(home, user, member_key, slot.grant), roster.serial)


def _open_grant(home: Path, user: str, member_key: PrivateKey, grant: bytes) -> ApplianceSecrets:
    try:
        secrets = ApplianceSecrets.from_bytes(SealedBox(member_key).decrypt(grant))
    except nacl.exceptions.CryptoError as error:
        raise KeyslotError(f"keyslot of {user!r}: the appliance grant does not open") from error
    if bytes(secrets.box_key.public_key) != bytes(appliance_public_key(home)) or bytes(
        secrets.signing_key.verify_key
    ) != bytes(appliance_verify_key(home)):
        raise KeyslotError(f"keyslot of {user!r} holds keys of another appliance")
    if secrets.admin_key is not None and bytes(secrets.admin_key.verify_key) != bytes(admin_verify_key(home)):
        # A stale administration key (the first member's, once a prescriber was enrolled): no power.
        secrets = secrets.without_admin()
    return replace(secrets, previous_box_keys=_previous_box_keys(home, secrets.box_key))


def regrant_keyslot(path: Path, entry: RosterEntry, secrets: ApplianceSecrets) -> bytes:
    """The keyslot file of `entry` with a new grant of `secrets` (a rotation: no passphrase needed)."""
    slot = _read_slot(path, entry.member.name)
    if slot.digest != entry.slot or slot.member_key != entry.member_key:
        raise KeyslotRefused(f"{path}: not the keyslot the staff roster lists; not re-granted")
    return _slot_bytes(replace(slot, grant=_grant(PublicKey(slot.member_key), secrets)))


def archive_bytes(box_keys: Sequence[PrivateKey], current: PublicKey) -> bytes:
    """`previous-keys.json`: earlier box keys (newest first), each sealed to the current box key."""
    content = {
        "format": "continuity-previous-keys",
        "version": 1,
        "keys": [
            {"key_id": key_id(bytes(key.public_key)).hex(), "sealed": _b64text(SealedBox(current).encrypt(bytes(key)))}
            for key in box_keys
        ],
    }
    return (json.dumps(content, sort_keys=True, indent=1) + "\n").encode()


def _previous_box_keys(home: Path, box_key: PrivateKey) -> tuple[PrivateKey, ...]:
    path = home / ARCHIVE
    try:
        content = json.loads(path.read_bytes()[:MAX_ROSTER_FILE])
    except FileNotFoundError:
        return ()
    except (OSError, ValueError) as error:
        log.error("%s unreadable (%s): older snapshots and journal details will not open", path, error)
        return ()
    found = []
    for item in content.get("keys", []) if isinstance(content, dict) else []:
        try:
            key = PrivateKey(SealedBox(box_key).decrypt(base64.b64decode(item["sealed"], validate=True)))
        except (KeyError, TypeError, ValueError, binascii.Error, nacl.exceptions.CryptoError) as error:
            log.error("%s: an archived key does not open (%s)", path, error)
            continue
        found.append(key)
    return tuple(found)


def open_keyslot(home: Path, user: str, passphrase: str) -> ApplianceSecrets:
    """The secrets of `user`'s keyslot (see open_member, which also says who and with which role)."""
    return open_member(home, user, passphrase).secrets


def list_staff(home: Path) -> list[str]:
    """The logins that have a keyslot file (whether the roster accepts it is checked at unlock)."""
    directory = home / KEYSLOTS
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("*.json") if USER_PATTERN.fullmatch(p.stem))


# --- enrolment and staff changes ------------------------------------------------------------------


def init_appliance(
    home: Path,
    user: str,
    passphrase: str,
    limits: KdfLimits | None = None,
    *,
    role: Role | str = Role.RECEPTION,
    rpps: str | None = None,
) -> ApplianceSecrets:
    """Create the appliance keys, the first staff keyslot and the signed roster. Refuses an initialised home.

    The first member holds the administration key whatever their role, so that they can enrol the
    others; when they are reception, enrolling the first prescriber replaces that key (add_staff).
    """
    member = make_member(user, role, rpps)
    check_passphrase(passphrase, user)
    if (home / APPLIANCE_PUB).exists():
        raise StaffError(
            f"{home} is already initialised (appliance.pub exists)",
            message_fr="Ce poste est déjà configuré.",
        )
    home.mkdir(parents=True, exist_ok=True)
    (home / KEYSLOTS).mkdir(mode=0o700, exist_ok=True)
    secrets = ApplianceSecrets.generate()
    assert secrets.admin_key is not None
    slot_bytes, slot = make_keyslot(member, passphrase, secrets, limits)
    # The slot first, appliance.pub last: a home without appliance.pub is not initialised and can be redone.
    path = _slot_path(home, user)
    if path.exists() and not (home / ROSTER).exists():
        path.unlink()  # left by an interrupted init
    _write_private(path, slot_bytes)
    roster = Roster(
        1,
        key_id(bytes(secrets.box_key.public_key)).hex(),
        bytes(secrets.admin_key.verify_key),
        (RosterEntry(member, slot.member_key, slot.digest),),
    )
    _write_replace(home / ROSTER, _roster_bytes(roster, secrets.admin_key, None), 0o600)
    _write_replace(home / ADMIN_PUB, _encode_key_line(ADMIN_PREFIX, bytes(secrets.admin_key.verify_key)).encode())
    _write_replace(
        home / APPLIANCE_SIGN_PUB,
        _encode_key_line(APPLIANCE_SIGN_PREFIX, bytes(secrets.signing_key.verify_key)).encode(),
    )
    _write_replace(
        home / APPLIANCE_PUB, _encode_key_line(APPLIANCE_PUBLIC_PREFIX, bytes(secrets.box_key.public_key)).encode()
    )
    return secrets


def _require_admin(home: Path, secrets: ApplianceSecrets) -> nacl.signing.SigningKey:
    admin = secrets.admin_key
    if admin is None or bytes(admin.verify_key) != bytes(admin_verify_key(home)):
        raise StaffError(
            "only a prescriber can add or remove staff (this keyslot holds no current administration key)",
            message_fr="Seul un prescripteur peut ajouter ou retirer un membre du personnel.",
        )
    return admin


def add_staff(
    home: Path,
    secrets: ApplianceSecrets,
    user: str,
    passphrase: str,
    limits: KdfLimits | None = None,
    *,
    role: Role | str = Role.RECEPTION,
    rpps: str | None = None,
) -> Roster:
    """Enrol a new staff member with the (already unlocked) secrets of an administrator; returns the new roster."""
    member = make_member(user, role, rpps)
    check_passphrase(passphrase, user)
    admin = _require_admin(home, secrets)
    roster = read_roster(home)
    if roster.find(user) is not None:
        raise StaffError(f"user {user!r} already has a keyslot", message_fr=f"« {user} » existe déjà.")
    if len(roster.entries) >= MAX_STAFF:
        raise StaffError(f"at most {MAX_STAFF} staff members", message_fr=f"{MAX_STAFF} membres au plus.")
    previous_admin = None
    if member.is_prescriber and not roster.prescribers():
        # The first prescriber: the administration key changes, so the first member (reception)
        # keeps no power over staff, even if they copied their grant.
        previous_admin, admin = admin, nacl.signing.SigningKey.generate()
    granted = replace(secrets, admin_key=admin if member.is_prescriber else None)
    slot_bytes, slot = make_keyslot(member, passphrase, granted, limits)
    path = _slot_path(home, user)
    if path.exists():
        # Not in the roster, so never accepted (a removed member's restored file, an interrupted add).
        log.warning("%s: replacing a keyslot file the staff roster does not list", path)
        _write_replace(path, slot_bytes, 0o600)
    else:
        _write_private(path, slot_bytes)
    new_roster = roster.with_entries(
        [*roster.entries, RosterEntry(member, slot.member_key, slot.digest)], admin_key=bytes(admin.verify_key)
    )
    _write_roster(home, new_roster, admin, previous_admin=previous_admin)
    return new_roster


def remove_staff(home: Path, secrets: ApplianceSecrets, user: str) -> Roster:
    """Take `user` out of the signed roster (their slot no longer opens), then delete their slot file.

    Their copy of the appliance secrets stays valid until the appliance key is rotated (rotate_appliance).
    """
    admin = _require_admin(home, secrets)
    roster = read_roster(home)
    entry = roster.find(user)
    if entry is None:
        raise StaffError(f"no keyslot for user {user!r}", message_fr=f"« {user} » n'existe pas.")
    remaining = [other for other in roster.entries if other.member.name != user]
    if not remaining:
        raise StaffError(
            "refusing to remove the last keyslot: the snapshots could never be opened again",
            message_fr="Impossible de supprimer le dernier accès : plus personne ne pourrait ouvrir les données.",
        )
    if roster.prescribers() and not any(other.member.is_prescriber for other in remaining):
        raise StaffError(
            "refusing to remove the last prescriber: nobody could manage staff any more",
            message_fr="Impossible de retirer le dernier prescripteur : plus personne ne pourrait gérer le personnel.",
        )
    new_roster = roster.with_entries(remaining)
    _write_roster(home, new_roster, admin)
    path = _slot_path(home, user)
    path.unlink(missing_ok=True)
    files.fsync_directory(path.parent)
    return new_roster


def members_with_slots(home: Path) -> Sequence[tuple[str, StaffMember | None]]:
    """Every keyslot file with the roster's member for it (None: a file the roster does not accept)."""
    roster = read_roster(home)
    names = sorted(set(list_staff(home)) | {member.name for member in roster.members})
    return [(name, entry.member if (entry := roster.find(name)) else None) for name in names]


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
