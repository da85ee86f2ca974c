"""Desks: the consultation rooms and the reception that open Continuity over SSH.

A desk is a name (``salle-2``), the SSH public key of that room's PC, and optionally the CUPS queue
of the printer beside it. The appliance runs the system's OpenSSH server; a desk connects with its
own key as the service user and gets the Continuity interface as the *forced command*, nothing else:
no shell, no other command, no forwarding of any kind, no file transfer. A desk key proves the desk,
never the person: staff still unlock with their own passphrase inside the interface.

Files (in the appliance home)
-----------------------------
- ``desks.json``: the registry, public data only (name, public key, printer, date added). It is the
  source of truth; every change is written atomically under a lock.
- ``ssh/authorized_keys``: derived from the registry and rewritten whole at every change, one line
  per desk::

      restrict,pty,command="exec /usr/bin/env LC_ALL=C.UTF-8 …/continuity tui --home HOME --desk NAME" \
          TYPE KEY continuity-desk-NAME      (one line)

  Only the key type and the base64 key of the file we were given are copied, after parsing them:
  never its comment or any text around it, so a key file cannot smuggle options (``command=``,
  ``permitopen=``…) or a second line into the file sshd trusts.

The sshd configuration (``desk config``) is two files: ``continuity-desks.conf``, a fragment the
system's sshd can include from ``/etc/ssh/sshd_config.d/`` (global limits, then a ``Match User``
block for the service user), and ``sshd_config``, a complete server around that fragment with its
own host key, that ``/usr/sbin/sshd -D -f DIR/sshd_config`` runs, as root or as the service user
itself (tests, demos). See docs/desks.md.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import pwd
import re
import shlex
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from continuity import files, strict_json
from continuity.errors import ContinuityError

log = logging.getLogger(__name__)

DESKS_FILE: Final = "desks.json"
DESKS_LOCK: Final = ".desks.lock"
SSH_DIR: Final = "ssh"
AUTHORIZED_KEYS: Final = "authorized_keys"
REGISTRY_VERSION: Final = 1

SSHD_CONFIG: Final = "sshd_config"
SSHD_FRAGMENT: Final = "continuity-desks.conf"
HOST_KEY: Final = "ssh_host_ed25519_key"
SSHD_BINARY: Final = "/usr/sbin/sshd"

# Lowercase ASCII letters, digits and inner hyphens: safe in a shell word, a file name, a journal field.
DESK_NAME: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")
# A conservative subset of what CUPS accepts as a queue name (no space, slash, quote or '#').
QUEUE_NAME: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,126}")
MAX_KEY_FILE_BYTES: Final = 16 * 1024
MIN_RSA_BITS: Final = 3072
KEY_TYPES: Final = frozenset(
    {
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
        "ssh-rsa",
    }
)
SSH_KEYGEN_TIMEOUT: Final = 10.0

_HOW_TO_MAKE_A_KEY_FR: Final = (
    "Sur le poste, créez une clé avec « ssh-keygen -t ed25519 » et donnez le fichier .pub (docs/desks.md)."
)


class DeskError(ContinuityError):
    """A desk name, key file or printer is refused, or the desk registry cannot be read or written."""

    exit_code = 41  # 40 is NotAllowed (errors.py)
    default_message_fr = "Poste refusé."


# --- names -----------------------------------------------------------------------------------------


def check_desk_name(name: str) -> str:
    """The name if it is a valid desk name; DeskError (with the rule, in French) otherwise."""
    if not isinstance(name, str) or DESK_NAME.fullmatch(name) is None:
        raise DeskError(
            f"invalid desk name {name!r}: 1-32 characters among a-z, 0-9 and '-', not starting or ending with '-'",
            message_fr=(
                f"Nom de poste invalide : « {_printable(name)} ». Utilisez de 1 à 32 lettres minuscules sans "
                "accent, chiffres ou tirets, sans tiret au début ni à la fin (par exemple « salle-2 »)."
            ),
        )
    return name


def check_queue_name(queue: str) -> str:
    if QUEUE_NAME.fullmatch(queue) is None:
        raise DeskError(
            f"invalid printer queue name {queue!r}",
            message_fr=(
                f"Nom d'imprimante invalide : « {_printable(queue)} ». Donnez le nom de la file CUPS tel que "
                "« lpstat -p » l'affiche (lettres, chiffres, « _ », « . », « - »)."
            ),
        )
    return queue


def _printable(text: object) -> str:
    """A name typed by someone, safe to echo back on a terminal (no control characters, bounded)."""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in str(text))
    return cleaned[:60] + ("…" if len(cleaned) > 60 else "")


# --- public keys -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeskKey:
    """An SSH public key, reduced to its type and its key blob (never a comment or an option)."""

    type: str
    blob: bytes

    @property
    def base64(self) -> str:
        return base64.b64encode(self.blob).decode("ascii")

    @property
    def fingerprint(self) -> str:
        """OpenSSH's SHA256 fingerprint, as `ssh-keygen -l` prints it on the desk PC."""
        return "SHA256:" + base64.b64encode(hashlib.sha256(self.blob).digest()).decode("ascii").rstrip("=")

    @property
    def line(self) -> str:
        return f"{self.type} {self.base64}"


def _bad_key(detail: str, reason_fr: str, source: str) -> DeskError:
    where = f"{source}: " if source else ""
    return DeskError(f"{where}{detail}", message_fr=f"Fichier de clé refusé : {reason_fr}. {_HOW_TO_MAKE_A_KEY_FR}")


def _ssh_strings(blob: bytes) -> list[bytes]:
    """The length-prefixed strings of an SSH wire-format key (RFC 4251 §5); ValueError if malformed."""
    fields = []
    offset = 0
    while offset < len(blob):
        if offset + 4 > len(blob):
            raise ValueError("truncated length")
        (length,) = struct.unpack(">I", blob[offset : offset + 4])
        offset += 4
        if length > len(blob) - offset:
            raise ValueError("length past the end")
        fields.append(blob[offset : offset + length])
        offset += length
    return fields


def _rsa_bits(modulus: bytes) -> int:
    return int.from_bytes(modulus, "big").bit_length()


def parse_public_key(data: bytes | str, *, source: str = "") -> DeskKey:
    """Parse the content of a `.pub` file: exactly one line `TYPE BASE64 [COMMENT]`.

    Refused with DeskError: anything but one line, control characters (a newline or carriage return
    in a comment is how a second authorized_keys line would be smuggled in), options before the
    type (``command=…``, ``from=…``), a key type other than ed25519, ECDSA, FIDO or RSA of at least
    3072 bits, and a key blob whose inner structure does not match its type.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > MAX_KEY_FILE_BYTES:
        raise _bad_key(f"{len(raw)} bytes: not a public key file", "le fichier est trop grand pour une clé", source)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _bad_key(f"not UTF-8 text ({error})", "ce n'est pas un fichier texte", source) from error
    if "PRIVATE KEY" in text:
        raise _bad_key(
            "this is a private key", "c'est une clé PRIVÉE : elle ne doit jamais quitter le poste ; "
            "donnez le fichier qui finit par .pub", source,
        )
    body = text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else text
    if not body.strip():
        raise _bad_key("empty file", "le fichier est vide", source)
    if "\n" in body or "\r" in body:
        raise _bad_key("more than one line", "le fichier contient plusieurs lignes (une seule clé attendue)", source)
    if any(not ch.isprintable() for ch in body):
        raise _bad_key("control character in the key line", "la ligne contient des caractères de contrôle", source)
    words = body.split()
    key_type = words[0]
    if key_type not in KEY_TYPES:
        if "=" in key_type or "," in key_type:
            raise _bad_key(
                f"options before the key type ({key_type[:40]!r})",
                "la ligne commence par des options (« command=… ») : seule une clé publique brute est acceptée",
                source,
            )
        raise _bad_key(
            f"key type {key_type[:40]!r} not accepted (accepted: {', '.join(sorted(KEY_TYPES))})",
            f"type de clé « {_printable(key_type[:40])} » non accepté", source,
        )
    if len(words) < 2:
        raise _bad_key("no key after the type", "la clé elle-même manque après son type", source)
    try:
        blob = base64.b64decode(words[1], validate=True)
    except (binascii.Error, ValueError) as error:
        raise _bad_key(f"key is not base64 ({error})", "la clé est abîmée (base64 invalide)", source) from error
    try:
        fields = _ssh_strings(blob)
    except ValueError as error:
        raise _bad_key(f"key blob malformed ({error})", "la clé est abîmée", source) from error
    if not fields or fields[0] != key_type.encode("ascii"):
        raise _bad_key(
            f"key blob says {fields[0][:40]!r} but the line says {key_type!r}" if fields else "empty key blob",
            "la clé ne correspond pas à son type", source,
        )
    expected_fields = {"ssh-ed25519": 2, "sk-ssh-ed25519@openssh.com": 3, "ssh-rsa": 3,
                       "sk-ecdsa-sha2-nistp256@openssh.com": 4}.get(key_type, 3)  # fmt: skip
    if len(fields) != expected_fields:
        raise _bad_key(f"{key_type} key with {len(fields)} fields", "la clé est abîmée", source)
    if key_type in ("ssh-ed25519", "sk-ssh-ed25519@openssh.com") and len(fields[1]) != 32:
        raise _bad_key("ed25519 key is not 32 bytes", "la clé est abîmée", source)
    if key_type.startswith(("ecdsa-", "sk-ecdsa-")):
        curve = key_type.removeprefix("sk-").removesuffix("@openssh.com").rsplit("-", 1)[1]
        if fields[1] != curve.encode("ascii"):
            raise _bad_key(f"ECDSA curve {fields[1][:20]!r} does not match {key_type}", "la clé est abîmée", source)
    if key_type == "ssh-rsa" and _rsa_bits(fields[2]) < MIN_RSA_BITS:
        raise _bad_key(
            f"RSA key of {_rsa_bits(fields[2])} bits (at least {MIN_RSA_BITS})",
            f"clé RSA trop courte ({_rsa_bits(fields[2])} bits ; {MIN_RSA_BITS} au moins)", source,
        )
    return DeskKey(key_type, blob)


def verify_with_ssh_keygen(key: DeskKey, *, ssh_keygen: str = "ssh-keygen") -> str:
    """Have OpenSSH's own parser read the key back; returns its fingerprint (equal to ours).

    Our parser checks the structure; ssh-keygen also checks the values (curve points, RSA exponent)
    the way sshd will. DeskError if it refuses the key or disagrees on the fingerprint.
    """
    with tempfile.TemporaryDirectory(prefix="continuity-desk-") as folder:
        path = Path(folder) / "desk.pub"
        path.write_text(key.line + "\n", encoding="ascii")
        try:
            result = subprocess.run(
                [ssh_keygen, "-l", "-E", "sha256", "-f", str(path)],
                capture_output=True, text=True, timeout=SSH_KEYGEN_TIMEOUT, check=False,
                env={**os.environ, "LC_ALL": "C"},
            )  # fmt: skip
        except FileNotFoundError as error:
            raise DeskError(
                f"{ssh_keygen} not found: install openssh-client",
                message_fr="L'outil ssh-keygen est absent : installez le paquet openssh-client (docs/desks.md).",
            ) from error
        except (OSError, subprocess.TimeoutExpired) as error:
            raise DeskError(f"ssh-keygen failed: {error}", message_fr="La clé n'a pas pu être vérifiée.") from error
    words = result.stdout.split()
    if result.returncode != 0 or len(words) < 2:
        detail = (result.stderr or result.stdout).strip()[:200]
        raise _bad_key(f"ssh-keygen refuses the key: {detail}", "OpenSSH ne reconnaît pas cette clé", "")
    if words[1] != key.fingerprint:
        raise _bad_key(f"ssh-keygen fingerprint {words[1]} differs from {key.fingerprint}",
                       "la clé est ambiguë", "")  # fmt: skip
    return words[1]


def read_key_file(path: Path) -> DeskKey:
    """Read, parse and verify a desk's `.pub` file (DeskError with a French reason when refused)."""
    try:
        if path.stat().st_size > MAX_KEY_FILE_BYTES:
            raise _bad_key(f"{path.stat().st_size} bytes", "le fichier est bien trop grand pour une clé", str(path))
        data = path.read_bytes()
    except OSError as error:
        raise DeskError(
            f"cannot read {path}: {error}",
            message_fr=f"Le fichier de clé {path} est illisible ({error.strerror or error}).",
        ) from error
    key = parse_public_key(data, source=str(path))
    verify_with_ssh_keygen(key)
    return key


# --- the registry ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Desk:
    name: str
    key: DeskKey
    printer: str | None
    added_at: str  # UTC, ISO 8601

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "key": self.key.line, "printer": self.printer, "added_at": self.added_at}


def _desk_from_json(value: object) -> Desk:
    if not isinstance(value, dict) or set(value) != {"name", "key", "printer", "added_at"}:
        raise ValueError("a desk is an object with name, key, printer, added_at")
    name, key, printer, added_at = value["name"], value["key"], value["printer"], value["added_at"]
    if not isinstance(name, str) or not isinstance(key, str) or not isinstance(added_at, str):
        raise ValueError("desk fields have the wrong types")
    if printer is not None and not isinstance(printer, str):
        raise ValueError("printer is not a string")
    try:
        check_desk_name(name)
        if printer is not None:
            check_queue_name(printer)
        parsed = parse_public_key(key)
    except DeskError as error:
        raise ValueError(str(error)) from error
    return Desk(name, parsed, printer, added_at)


def _safe_word(path: Path, what: str) -> str:
    """A path quoted for the shell, refused if it could break out of the authorized_keys option."""
    text = str(path)
    if not path.is_absolute() or any(ch in text for ch in '"\\') or any(not ch.isprintable() for ch in text):
        raise DeskError(
            f"{what} path {text!r} cannot go into a forced command (absolute, no quote, backslash or control)",
            message_fr=f"Le chemin {_printable(text)} ne peut pas servir de commande de poste "
            "(il doit être absolu, sans guillemet ni barre oblique inverse).",
        )
    return shlex.quote(text)


def continuity_executable() -> Path:
    """The `continuity` command of this installation (next to the running Python, as pip installs it)."""
    candidate = Path(sys.executable).parent / "continuity"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate.absolute()
    found = shutil.which("continuity")
    if found:
        return Path(found).absolute()
    raise DeskError(
        f"no continuity executable next to {sys.executable} nor on PATH",
        message_fr="La commande « continuity » est introuvable : réinstallez Continuity (make demo).",
    )


class DeskRegistry:
    """The desks of one appliance home: `desks.json` and the `authorized_keys` derived from it."""

    def __init__(self, home: Path, *, executable: Path | None = None) -> None:
        self.home = Path(home)
        self.path = self.home / DESKS_FILE
        self.authorized_keys = self.home / SSH_DIR / AUTHORIZED_KEYS
        self._executable = executable

    # -- reading

    def desks(self) -> list[Desk]:
        """Every desk, by name. A registry that cannot be read is a DeskError: never guessed."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as error:
            raise DeskError(f"cannot read {self.path}: {error}",
                            message_fr=f"La liste des postes ({self.path}) est illisible.") from error  # fmt: skip
        return _parse_registry(data, self.path)

    def get(self, name: str) -> Desk | None:
        return next((desk for desk in self.desks() if desk.name == name), None)

    # -- changing

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.home / DESKS_LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except OSError as error:
            raise DeskError(
                f"cannot lock the desk registry in {self.home}: {error}",
                message_fr=f"Le dossier {self.home} n'est pas accessible en écriture.",
            ) from error
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def add(self, name: str, key: DeskKey, *, printer: str | None = None, replace: bool = False,
            now: dt.datetime | None = None) -> Desk:
        """Authorise a desk (DeskError if the name or the key is already used, unless `replace`)."""
        check_desk_name(name)
        if printer is not None:
            check_queue_name(printer)
        added_at = (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
        with self._locked():
            desks = self.desks()
            for other in desks:
                if other.key.blob == key.blob and other.name != name:
                    raise DeskError(
                        f"key {key.fingerprint} is already the key of desk {other.name}",
                        message_fr=f"Cette clé est déjà celle du poste « {other.name} » : chaque poste a sa clé.",
                    )
            if any(desk.name == name for desk in desks) and not replace:
                raise DeskError(
                    f"desk {name} already exists",
                    message_fr=f"Le poste « {name} » existe déjà (pour changer sa clé ou son imprimante : --replace).",
                )
            desk = Desk(name, key, printer, added_at)
            desks = sorted([d for d in desks if d.name != name] + [desk], key=lambda d: d.name)
            self._write(desks)
        return desk

    def remove(self, name: str) -> Desk:
        """Withdraw a desk: its key stops opening connections, and a session open there ends at its next action."""
        check_desk_name(name)
        with self._locked():
            desks = self.desks()
            found = next((desk for desk in desks if desk.name == name), None)
            if found is None:
                raise DeskError(f"no desk named {name}", message_fr=f"Aucun poste ne s'appelle « {name} ».")
            self._write([desk for desk in desks if desk.name != name])
        return found

    def _write(self, desks: Sequence[Desk]) -> None:
        # authorized_keys first when it shrinks or grows: sshd reads it at each connection, and it is
        # the file that lets anyone in. The registry follows; a failure in between is reported.
        keys_text = self.authorized_keys_text(desks)
        registry = json.dumps({"version": REGISTRY_VERSION, "desks": [d.as_json() for d in desks]},
                              ensure_ascii=False, indent=2) + "\n"  # fmt: skip
        try:
            self.authorized_keys.parent.mkdir(mode=0o700, exist_ok=True)
            files.write_atomic(self.authorized_keys, keys_text.encode("ascii"), mode=0o600)
            files.write_atomic(self.path, registry.encode("utf-8"), mode=0o600)
        except OSError as error:
            raise DeskError(
                f"cannot write the desk files in {self.home}: {error}",
                message_fr=f"Les fichiers des postes n'ont pas pu être écrits dans {self.home} "
                f"({error.strerror or error}) : relancez la commande.",
            ) from error

    # -- the file sshd reads

    def forced_command(self, name: str) -> str:
        """The command sshd runs for this desk, whatever the client asked for."""
        check_desk_name(name)
        executable = _safe_word(self._executable or continuity_executable(), "continuity")
        home = _safe_word(self.home.absolute(), "home")
        # exec: the interface is the session leader and gets the SIGHUP when the connection drops.
        # LC_ALL: whatever locale the client sends, the screen is drawn in UTF-8.
        return f"exec /usr/bin/env LC_ALL=C.UTF-8 {executable} tui --home {home} --desk {name}"

    def authorized_keys_text(self, desks: Sequence[Desk]) -> str:
        lines = [
            "# Continuity desks: generated by `continuity desk add/remove` from desks.json.",
            "# Do not edit: every change rewrites this file. Each key opens only the Continuity interface.",
        ]
        for desk in desks:
            command = self.forced_command(desk.name)
            # `restrict` turns off every forwarding, the agent, X11, user rc and the pty; `pty` gives the
            # terminal back, and only that. The comment is ours, never the one of the file we were given.
            lines.append(f'restrict,pty,command="{command}" {desk.key.line} continuity-desk-{desk.name}')
        return "\n".join(lines) + "\n"


def _parse_registry(data: bytes, path: Path) -> list[Desk]:
    try:
        raw = json.loads(data.decode("utf-8"), object_pairs_hook=strict_json.object_without_duplicates,
                         parse_constant=strict_json.refuse_constant)  # fmt: skip
        if not isinstance(raw, dict) or set(raw) != {"version", "desks"} or raw["version"] != REGISTRY_VERSION:
            raise ValueError(f"expected {{'version': {REGISTRY_VERSION}, 'desks': [...]}}")
        listed = raw["desks"]
        if not isinstance(listed, list):
            raise ValueError("desks is not a list")
        desks = [_desk_from_json(item) for item in listed]
    except (UnicodeDecodeError, ValueError) as error:
        raise DeskError(
            f"{path} is not a valid desk registry: {error}",
            message_fr=f"La liste des postes ({path}) est endommagée : aucun poste n'est accepté tant qu'elle "
            "n'est pas réparée (« continuity desk list » dit pourquoi).",
        ) from error
    if len({desk.name for desk in desks}) != len(desks):
        raise DeskError(f"{path}: a desk name appears twice",
                        message_fr=f"La liste des postes ({path}) est endommagée.")  # fmt: skip
    return desks


class DeskPresence:
    """Answers "is this desk still listed?" cheaply enough to ask at every key press.

    The registry is re-read only when its file changed (inode, size, mtime). A registry that is
    missing, unreadable or damaged answers False: the session ends rather than go on unchecked.
    A desk still listed gets its printer applied again (`desk add --replace --printer` reaches a
    session that is already open, from its next key press on).
    """

    def __init__(self, home: Path, name: str) -> None:
        self.registry = DeskRegistry(home)
        self.name = check_desk_name(name)
        self._seen: tuple[int, int, int] | None = None
        self._listed = False

    def listed(self) -> bool:
        try:
            info = os.stat(self.registry.path)
        except OSError:
            self._seen = None
            return False
        seen = (info.st_ino, info.st_size, info.st_mtime_ns)
        if seen != self._seen:
            try:
                found = self.registry.get(self.name)
                self._listed = found is not None
                if found is not None:
                    use_printer(found)
            except DeskError as error:
                log.error("desk %s: %s", self.name, error)
                self._listed = False
            self._seen = seen
        return self._listed


# --- opening a desk session ------------------------------------------------------------------------


def refusal(environ: Mapping[str, str], *, terminal: bool) -> tuple[str, str] | None:
    """Why this forced-command run must not open the interface: (English detail, French message), or None.

    sshd runs the forced command whatever the client asked: a shell, another command, scp or sftp
    (``SSH_ORIGINAL_COMMAND`` is then set), or no terminal at all. Each of those gets nothing.
    """
    original = environ.get("SSH_ORIGINAL_COMMAND")
    if original is not None:
        return (
            f"the client asked for a command ({len(original)} characters): refused",
            "Ce poste ne peut ouvrir que Continuity : aucune autre commande n'est permise.",
        )
    if not terminal:
        return (
            "no terminal (ssh without -t, or a file transfer): refused",
            "Continuity s'ouvre dans un terminal : connectez-vous avec « ssh -t » (docs/desks.md).",
        )
    return None


def require_listed(home: Path, name: str) -> Desk:
    """The desk, if it is in the registry; DeskError otherwise (the forced command of a removed desk)."""
    check_desk_name(name)
    found = DeskRegistry(home).get(name)
    if found is None:
        raise DeskError(
            f"desk {name} is not in {home / DESKS_FILE}",
            message_fr=f"Le poste « {name} » n'est plus autorisé sur cet appareil. Adressez-vous au responsable.",
        )
    return found


def use_printer(desk: Desk, environ: dict[str, str] | None = None) -> None:
    """Make the desk's printer the default destination of this process.

    CUPS's own per-process default: `lp`, `lpstat -d` and libcups all honour ``PRINTER`` (and
    ``LPDEST`` before it), so every print path of the interface goes to the desk's printer without
    being told. A desk without a printer uses the system default (a printer removed from the desk
    by `desk add --replace` is dropped from the process too).
    """
    target = os.environ if environ is None else environ
    if desk.printer is None:
        target.pop("PRINTER", None)
        target.pop("LPDEST", None)
        return
    target["PRINTER"] = desk.printer
    target["LPDEST"] = desk.printer


# --- sshd configuration ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SshdFiles:
    config: Path
    fragment: Path
    host_key: Path
    host_fingerprint: str
    created_host_key: bool
    warnings_fr: tuple[str, ...]


def strict_modes_problem(path: Path, uid: int) -> str | None:
    """What sshd's StrictModes will refuse on the way to `path`: a directory not owned by root or
    `uid`, or writable by group or others (a world-writable /tmp is the usual one). None if fine."""
    current = path.absolute()
    for folder in [current, *current.parents]:
        try:
            info = folder.stat()
        except FileNotFoundError:
            # Not there yet (`desk config` before the first `desk add`, which creates ssh/ as 0700):
            # what sshd will check is the part of the way that exists.
            continue
        except OSError as error:
            return f"{folder}: {error.strerror or error}"
        if info.st_uid not in (0, uid) or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return f"{folder} (propriétaire {info.st_uid}, droits {stat.filemode(info.st_mode)})"
    return None


def _user_entry(user: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(user)
    except KeyError as error:
        raise DeskError(
            f"no system user named {user}",
            message_fr=f"L'utilisateur système « {_printable(user)} » n'existe pas sur cet appareil (docs/desks.md).",
        ) from error


def sshd_fragment_text(*, user: str, home: Path, also_allow: Sequence[str] = ()) -> str:
    """The sshd settings for the desks: global limits, then everything about the service user."""
    keys_file = (Path(home).absolute() / SSH_DIR / AUTHORIZED_KEYS).as_posix()
    if any(ch.isspace() or ch == '"' for ch in keys_file):
        raise DeskError(f"home path {keys_file!r} has a space or quote: sshd cannot take it",
                        message_fr="Le dossier de l'appareil ne doit contenir ni espace ni guillemet.")  # fmt: skip
    root_login = "forced-commands-only" if user == "root" else "no"
    allowed = " ".join([user, *also_allow])
    return f"""\
# Continuity desks: generated by `continuity desk config`. Regenerate it rather than edit it.
# On the appliance, copy it into /etc/ssh/sshd_config.d/ (docs/desks.md). Debian's sshd_config
# includes that folder first, and sshd keeps the first value it reads: the four global lines below
# then hold for the whole server, and the Match block for the Continuity service user only.

# Only the service user (and the names given with --also-allow) may log in at all.
AllowUsers {allowed}
# Unauthenticated connections: 30 s to log in, at most 3 keys tried, new ones refused beyond 10.
LoginGraceTime 30
MaxAuthTries 3
MaxStartups 10:30:60

Match User {user}
    # A desk key, and nothing else: no password, no keyboard-interactive, no host-based login.
    AuthenticationMethods publickey
    PubkeyAuthentication yes
    PasswordAuthentication no
    KbdInteractiveAuthentication no
    HostbasedAuthentication no
    PermitRootLogin {root_login}
    # The desks, each with its forced command (continuity desk add / remove write this file).
    AuthorizedKeysFile {keys_file}
    AuthorizedKeysCommand none
    AuthorizedPrincipalsFile none
    # No forwarding of any kind (TCP, agent, X11, Unix sockets, tunnels) and no ~/.ssh/rc.
    DisableForwarding yes
    AllowTcpForwarding no
    AllowAgentForwarding no
    AllowStreamLocalForwarding no
    X11Forwarding no
    PermitTunnel no
    PermitListen none
    PermitOpen none
    GatewayPorts no
    PermitUserRC no
    # One terminal per connection: the interface.
    PermitTTY yes
    MaxSessions 1
    # A cut network is noticed within a minute: sshd hangs up and the interface locks and ends.
    ClientAliveInterval 15
    ClientAliveCountMax 4
    # Which desk key was used, in the system log of each connection.
    LogLevel VERBOSE
"""


def sshd_config_text(*, out: Path, port: int, listen: Sequence[str] = ()) -> str:
    """A complete server around the fragment: for a dedicated instance, tests and demos."""
    out = Path(out).absolute()
    listen_lines = "".join(f"ListenAddress {address}\n" for address in listen)
    return f"""\
# Continuity desks: a complete sshd for `/usr/sbin/sshd -D -f {out / SSHD_CONFIG}`.
# Generated by `continuity desk config`. Runs as root, or as the service user itself (tests, demos:
# it can then only log that user in). On an appliance, prefer including {SSHD_FRAGMENT} from the
# system's sshd (docs/desks.md).
Port {port}
{listen_lines}HostKey {out / HOST_KEY}
PidFile {out / "sshd.pid"}
# No PAM: this server only knows keys (and an unprivileged sshd cannot use PAM).
UsePAM no
PermitUserEnvironment no
StrictModes yes
PrintMotd no
PrintLastLog no
# No Subsystem line: no sftp.
Include {out / SSHD_FRAGMENT}
"""


def _host_key_fingerprint(host_key: Path) -> str:
    public = host_key.with_name(host_key.name + ".pub")
    try:
        return parse_public_key(public.read_bytes(), source=str(public)).fingerprint
    except OSError as error:
        raise DeskError(f"cannot read {public}: {error}", message_fr=f"Clé d'hôte illisible : {public}.") from error


def write_sshd_config(
    out: Path,
    *,
    home: Path,
    port: int,
    user: str,
    listen: Sequence[str] = (),
    also_allow: Sequence[str] = (),
    ssh_keygen: str = "ssh-keygen",
) -> SshdFiles:
    """Write the fragment, the complete configuration and (once) the host key into `out`.

    An existing host key is kept: the desks have recorded its fingerprint at their first connection,
    and a new one would make every desk refuse the appliance (as it should, if it were an impostor).
    """
    if not 1 <= port <= 65535:
        raise DeskError(f"port {port} out of range", message_fr=f"Port {port} invalide (1 à 65535).")
    entry = _user_entry(user)
    for name in also_allow:
        _user_entry(name)
    out = Path(out).absolute()
    try:
        out.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise DeskError(f"cannot create {out}: {error}",
                        message_fr=f"Le dossier {out} n'a pas pu être créé.") from error  # fmt: skip
    host_key = out / HOST_KEY
    created = False
    if not host_key.exists():
        try:
            subprocess.run(
                [ssh_keygen, "-q", "-t", "ed25519", "-N", "", "-C", "continuity-appliance", "-f", str(host_key)],
                check=True, capture_output=True, timeout=SSH_KEYGEN_TIMEOUT,
            )  # fmt: skip
        except FileNotFoundError as error:
            raise DeskError(f"{ssh_keygen} not found", message_fr="Installez openssh-client (ssh-keygen).") from error
        except (OSError, subprocess.SubprocessError) as error:
            raise DeskError(f"host key generation failed: {error}",
                            message_fr="La clé d'hôte n'a pas pu être créée.") from error  # fmt: skip
        created = True
    fragment = out / SSHD_FRAGMENT
    config = out / SSHD_CONFIG
    try:
        files.write_atomic(fragment, sshd_fragment_text(user=user, home=home, also_allow=also_allow).encode(), 0o644)
        files.write_atomic(config, sshd_config_text(out=out, port=port, listen=listen).encode(), 0o644)
    except OSError as error:
        raise DeskError(f"cannot write into {out}: {error}", message_fr=f"Écriture impossible dans {out}.") from error
    warnings = []
    if Path(entry.pw_shell).name in {"nologin", "false"}:
        warnings.append(
            f"L'utilisateur « {user} » a pour shell {entry.pw_shell} : sshd ne pourra pas lancer Continuity. "
            f"Corrigez avec : usermod -s /bin/sh {user}"
        )
    problem = strict_modes_problem(Path(home) / SSH_DIR, entry.pw_uid)
    if problem:
        warnings.append(
            f"sshd refusera les clés des postes : un dossier du chemin de l'appareil est modifiable par d'autres "
            f"utilisateurs : {problem}. Placez l'appareil ailleurs (par exemple /var/lib/continuity)."
        )
    if os.getuid() != 0 and os.getuid() != entry.pw_uid:
        warnings.append(f"Un sshd lancé sans être root ne peut connecter que son propre utilisateur, pas « {user} ».")
    return SshdFiles(config, fragment, host_key, _host_key_fingerprint(host_key), created, tuple(warnings))


def check_sshd_config(config: Path, *, sshd: str = SSHD_BINARY) -> str | None:
    """Run `sshd -t` on the configuration: None if sshd accepts it, its complaint otherwise."""
    try:
        result = subprocess.run([sshd, "-t", "-f", str(config)], capture_output=True, text=True, timeout=20,
                                check=False)  # fmt: skip
    except FileNotFoundError:
        return f"{sshd} n'est pas installé (paquet openssh-server)"
    except (OSError, subprocess.TimeoutExpired) as error:
        return str(error)
    return None if result.returncode == 0 else (result.stderr or result.stdout).strip()
