"""The appliance home: inbox/, store/, quarantine/, state and alarm files, commits, retention, unlock.

Layout and commit protocol: docs/snapshot-format.md §7, §9 and §10. The nightly side (`ingest`) holds
no secret; `open_latest` is the only place that decrypts, with secrets from an opened keyslot. A
verified snapshot that lost too many patients is not made current: it waits in quarantine/ until an
operator accepts it (`accept_quarantined`), and the snapshot it would have replaced is pinned against
retention (docs/operations.md, "Quarantine").
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import logging
import os
import re
import secrets as random_source
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from continuity import envelope, files, keys, rotation
from continuity.errors import (
    ContinuityError,
    Equivocation,
    NoSnapshot,
    NotFound,
    NotInitialized,
    Quarantined,
    SnapshotDatabaseError,
    SnapshotRejected,
    StoreError,
    UnsupportedFormat,
)
from continuity.safe_text import printable, printable_or_none
from continuity.snapshotdb import SCHEMA_VERSION, SnapshotDB, open_bytes

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
CONFIG_FILE = "config.json"
LOCK_FILE = ".lock"
INBOX = "inbox"
REJECTED = "rejected"
STORE = "store"
STAGING_PREFIX = ".staging-"
QUARANTINE = "quarantine"
ALARM_FILE = "alarm.json"
PIN_SUFFIX = ".keep"  # store/<sequence>.snap.keep: retention leaves that snapshot alone
MAX_ATTEMPTS = 50
MAX_STATE_FILE = 1 << 20
MAX_ALARM_FILE = 16 * 1024
QUARANTINE_KEEP = 3
SNAPSHOT_NAME = re.compile(r"(\d{20})\.snap")
# Bounds of every string a pull records (docs/snapshot-format.md §10): whatever a server answers or a
# file is called, an attempt stays under 1 KB and the state file far under MAX_STATE_FILE.
MAX_SOURCE = 200
MAX_REASON = 40
MAX_DETAIL = 500
MAX_VALIDATOR = 200
MAX_CONDITIONAL_SOURCES = 8
# Rejections that need a person now, whatever the age of the data: someone may be attacking the feed.
# They are kept in alarm.json, beside the state, until a snapshot is accepted: a lost or rebuilt state
# file cannot make them vanish.
ALARM_REASONS = frozenset({"equivocation", "untrusted_signer"})
_VALIDATOR = re.compile(rf"[\x20-\x7e]{{1,{MAX_VALIDATOR}}}")

Outcome = str  # "accepted" | "unchanged" | "rejected" | "quarantined" | "error"


def _checkout_home() -> Path | None:
    package = Path(__file__).resolve().parent
    root = package.parent
    if (root / "pyproject.toml").is_file() and (root / "snapshots").is_dir():
        return root / "snapshots"
    return None


def default_home() -> Path:
    """CONTINUITY_HOME, else `snapshots/` of the checkout, else the per-user data directory."""
    configured = os.environ.get("CONTINUITY_HOME")
    if configured:
        return Path(configured).expanduser()
    checkout = _checkout_home()
    if checkout is not None:
        return checkout
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "continuity"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


fsync_directory = files.fsync_directory


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """files.write_atomic, with a failure reported as the store's error."""
    try:
        files.write_atomic(path, data, mode)
    except OSError as error:
        raise StoreError(f"{path}: cannot write ({error.strerror})") from error


@dataclass(frozen=True)
class StoreConfig:
    """Tunables; `config.json` in the home may override any of them (docs/operations.md)."""

    keep: int = 7
    max_file_size: int = envelope.DEFAULT_MAX_FILE_SIZE
    max_sequence_jump: int = envelope.DEFAULT_MAX_SEQUENCE_JUMP
    clock_skew_seconds: int = int(envelope.DEFAULT_CLOCK_SKEW.total_seconds())
    max_validity_days: int = envelope.DEFAULT_MAX_VALIDITY.days
    # A snapshot with fewer patients than this share of the current one waits in quarantine/.
    min_patient_percent: int = 90

    @classmethod
    def load(cls, home: Path) -> StoreConfig:
        path = home / CONFIG_FILE
        if not path.is_file():
            return cls()
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise StoreError(f"{path}: unreadable configuration ({error})") from error
        known = set(cls.__dataclass_fields__)
        if not isinstance(raw, dict) or not set(raw) <= known:
            raise StoreError(f"{path}: expected an object with keys among {sorted(known)}")
        for key, value in raw.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise StoreError(f"{path}: {key} must be a positive integer")
        if raw.get("min_patient_percent", 1) > 100:
            raise StoreError(f"{path}: min_patient_percent is a percentage, at most 100")
        return cls(**raw)


@dataclass(frozen=True)
class IngestResult:
    outcome: Outcome  # "accepted", "unchanged" or "quarantined"
    header: envelope.Header
    path: Path
    detail: str | None = None  # why it was quarantined
    again: bool = False  # quarantined: the very file already waiting there


@dataclass(frozen=True)
class QuarantineEntry:
    """A snapshot file waiting in quarantine/, with its verified header (None if it no longer verifies)."""

    path: Path
    sequence: int
    header: envelope.Header | None
    problem: str | None = None

    @property
    def patients(self) -> int | None:
        return patient_count(self.header.counts) if self.header else None


def patient_count(counts: Any) -> int:
    """Patients in a snapshot, from its signed counts; a snapshot that does not say has none."""
    value = counts.get("patient") if isinstance(counts, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


@dataclass
class OpenedSnapshot:
    """A decrypted, validated snapshot in memory."""

    db: SnapshotDB
    header: envelope.Header
    path: Path
    fell_back_from: str | None = None  # why the newer snapshot(s) could not be used, if any

    def close(self) -> None:
        self.db.close()


@dataclass
class _Staging:
    path: Path
    handle: Any = field(default=None, repr=False)


class Store:
    """One appliance home. Every state change happens under `.lock` and is atomic on disk."""

    def __init__(self, home: Path, config: StoreConfig | None = None) -> None:
        self.home = Path(home)
        self._config = config
        self.inbox = self.home / INBOX
        self.rejected_dir = self.inbox / REJECTED
        self.store_dir = self.home / STORE
        self.quarantine_dir = self.home / QUARANTINE
        self.state_path = self.home / STATE_FILE
        self.alarm_path = self.home / ALARM_FILE

    @property
    def config(self) -> StoreConfig:
        if self._config is None:
            self._config = StoreConfig.load(self.home)
        return self._config

    # -- setup

    def create(self) -> None:
        try:
            self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
            for directory in (self.inbox, self.store_dir):
                directory.mkdir(mode=0o700, exist_ok=True)
        except OSError as error:
            raise StoreError(f"{self.home}: cannot create the appliance home ({error.strerror})") from error

    def is_initialized(self) -> bool:
        return (self.home / keys.APPLIANCE_PUB).is_file()

    def require_initialized(self) -> None:
        if not self.is_initialized():
            raise NotInitialized(f"{self.home}: no appliance key (run `continuity init`)")
        self.create()

    def appliance_key_id(self) -> bytes:
        return keys.key_id(bytes(keys.appliance_public_key(self.home)))

    def trusted_keys(self) -> list[Any]:
        return keys.trusted_publishers(self.home)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise commits and state updates between `pull`, `watch` and `accept` (`status` only reads)."""
        try:
            fd = os.open(self.home / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as error:
            raise StoreError(f"{self.home}: cannot take the lock ({error.strerror})") from error
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- state

    def _read_state_file(self) -> tuple[dict[str, Any] | None, str | None]:
        """The state as written, or (None, why) when it is damaged; (None, None) when there is none."""
        try:
            with self.state_path.open("rb") as handle:
                raw = handle.read(MAX_STATE_FILE + 1)
        except FileNotFoundError:
            return None, None
        except OSError as error:
            raise StoreError(f"{self.state_path}: cannot read ({error.strerror})") from error
        if len(raw) > MAX_STATE_FILE:
            return None, f"is larger than {MAX_STATE_FILE} bytes"
        try:
            state = json.loads(raw)
        except ValueError as error:
            return None, f"is not valid JSON ({printable(error, 120)})"
        problem = _state_problem(state)
        if problem:
            return None, problem
        return state, None

    def read_state(self) -> dict[str, Any]:
        """The state; rebuilt from the newest verified stored file if it is missing or damaged.

        This only reads: whoever writes next (pull, watch, accept) stores the rebuilt state. A rebuild
        after damage leaves a `rebuilt` note that `status` reports until the next accepted snapshot;
        alarms live in alarm.json and quarantined files in quarantine/, so neither is lost by it.
        """
        state, damage = self._read_state_file()
        if state is None:
            state = self._rebuild_state()
            if damage is None and isinstance(state.get("current"), dict):
                damage = "is missing while store/ holds snapshots"
            if damage is not None:
                log.warning("%s %s: rebuilt from the stored snapshots", self.state_path, damage)
                state["rebuilt"] = {"at": envelope.format_time(utcnow()), "why": f"{STATE_FILE} {damage}"}
        current = state.get("current")
        if isinstance(current, dict) and not (self.store_dir / str(current.get("file", ""))).is_file():
            missing = printable(current.get("file"), 40)
            log.warning("current snapshot file %s is missing: rebuilding the state", missing)
            rebuilt = self._rebuild_state()
            rebuilt["attempts"] = state.get("attempts", [])
            rebuilt["conditional"] = state.get("conditional", {})
            rebuilt["rebuilt"] = {
                "at": envelope.format_time(utcnow()),
                "why": f"the current snapshot file {missing} is missing",
            }
            state = rebuilt
        return state

    def _rebuild_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"version": 1, "current": None, "attempts": [], "conditional": {}}
        trusted = self.trusted_keys() if (self.home / keys.TRUSTED).is_dir() else []
        # Only store/: a quarantined file never becomes current by a rebuild.
        for path in self.snapshot_files():
            try:
                with path.open("rb") as handle:
                    header = envelope.read_header(handle, trusted, max_file_size=self.config.max_file_size)
                    envelope.copy_payload(handle, header, None)
            except (SnapshotRejected, OSError) as error:
                log.warning("stored file %s does not verify (%s): skipped", path.name, error)
                continue
            state["current"] = {**header.summary(), "file": path.name, "accepted_at": None}
            break
        return state

    def write_state(self, state: dict[str, Any]) -> None:
        data = json.dumps(state, indent=1, sort_keys=True).encode("utf-8") + b"\n"
        while len(data) > MAX_STATE_FILE // 2 and state.get("attempts"):
            # Cannot happen with the bounds of record_attempt; kept so that no writer can make it unreadable.
            state["attempts"] = state["attempts"][: len(state["attempts"]) // 2]
            data = json.dumps(state, indent=1, sort_keys=True).encode("utf-8") + b"\n"
        write_atomic(self.state_path, data)

    def previous(self, state: dict[str, Any]) -> envelope.Previous | None:
        current = state.get("current")
        if not isinstance(current, dict):
            return None
        return envelope.Previous(
            practice_id=str(current["practice_id"]),
            sequence=int(current["sequence"]),
            payload_sha256=str(current["payload_sha256"]),
            created_at=envelope.parse_time(current["created_at"], "created_at"),
        )

    def record_attempt(
        self,
        *,
        source: str,
        outcome: Outcome,
        reason: str | None = None,
        detail: str | None = None,
        sequence: int | None = None,
        now: dt.datetime | None = None,
        conditional: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Remember one pull attempt (the last MAX_ATTEMPTS are kept) for `status` and the TUI.

        Every string is made printable and bounded here, whoever calls. An alarm reason is also
        written to alarm.json, first, so that it survives a state file that cannot be written or read.
        """
        attempt: dict[str, Any] = {
            "at": envelope.format_time(now or utcnow()),
            "source": printable(source, MAX_SOURCE),
            "outcome": printable(outcome, MAX_REASON),
            "reason": printable_or_none(reason, MAX_REASON),
            "detail": printable_or_none(detail, MAX_DETAIL),
            "sequence": sequence,
        }
        with self.locked():
            if outcome == "rejected" and reason in ALARM_REASONS:
                write_atomic(self.alarm_path, json.dumps({"version": 1, **attempt}, sort_keys=True).encode() + b"\n")
            state = self.read_state()
            state["attempts"] = ([attempt] + list(state.get("attempts", [])))[:MAX_ATTEMPTS]
            if conditional is not None:
                _remember_validators(state, attempt["source"], conditional)
            self.write_state(state)
        return attempt

    def conditional(self, source: str) -> dict[str, str]:
        """The HTTP validators (ETag, Last-Modified) remembered for a source."""
        found = self.read_state().get("conditional", {}).get(printable(source, MAX_SOURCE))
        if not isinstance(found, dict):
            return {}
        return {k: v for k, v in found.items() if k in ("etag", "last_modified") and _valid_validator(v)}

    def read_alarm(self) -> dict[str, Any] | None:
        """The alarm raised since the last accepted snapshot, if any. A damaged record is an alarm too."""
        try:
            with self.alarm_path.open("rb") as handle:
                raw = handle.read(MAX_ALARM_FILE + 1)
        except FileNotFoundError:
            return None
        except OSError as error:
            return {"reason": "alarm_unreadable", "at": None, "detail": f"{ALARM_FILE}: {error.strerror}"}
        try:
            alarm = json.loads(raw) if len(raw) <= MAX_ALARM_FILE else None
        except ValueError:
            alarm = None
        if not isinstance(alarm, dict):
            return {"reason": "alarm_unreadable", "at": None, "detail": f"{ALARM_FILE} is damaged"}
        return {
            "reason": printable(alarm.get("reason"), MAX_REASON),
            "at": printable_or_none(alarm.get("at"), 40),
            "source": printable_or_none(alarm.get("source"), MAX_SOURCE),
            "detail": printable_or_none(alarm.get("detail"), MAX_DETAIL),
        }

    # -- files

    def snapshot_files(self) -> list[Path]:
        """Stored snapshot files, newest sequence first."""
        return _snapshot_files(self.store_dir)

    def quarantined_files(self) -> list[Path]:
        """Files waiting in quarantine/, newest sequence first."""
        return _snapshot_files(self.quarantine_dir)

    def pinned_files(self) -> list[Path]:
        """Stored snapshots that retention must keep (each was current when a quarantine began)."""
        return [path for path in self.snapshot_files() if path.with_name(path.name + PIN_SUFFIX).exists()]

    def quarantine(self) -> list[QuarantineEntry]:
        """The snapshots waiting for an operator, newest first, each with its verified header."""
        trusted = self.trusted_keys()
        entries = []
        for path in self.quarantined_files():
            sequence = int(path.name[:20])
            try:
                with path.open("rb") as handle:
                    header = envelope.read_header(handle, trusted, max_file_size=self.config.max_file_size)
            except (SnapshotRejected, OSError) as error:
                entries.append(QuarantineEntry(path, sequence, None, printable(error, MAX_DETAIL)))
                continue
            entries.append(QuarantineEntry(path, sequence, header))
        return entries

    def staging_files(self) -> list[Path]:
        if not self.store_dir.is_dir():
            return []
        return sorted(p for p in self.store_dir.iterdir() if p.name.startswith(STAGING_PREFIX))

    def current_path(self) -> Path | None:
        current = self.read_state().get("current")
        if not isinstance(current, dict):
            return None
        return self.store_dir / str(current["file"])

    def cleanup_staging(self) -> None:
        """Remove staging files left by a process that died (their owner pid is gone)."""
        for path in self.staging_files():
            match = re.match(rf"{re.escape(STAGING_PREFIX)}(\d+)-", path.name)
            pid = int(match.group(1)) if match else None
            if pid is not None and pid != os.getpid() and _alive(pid):
                continue
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _new_staging(self) -> _Staging:
        path = self.store_dir / f"{STAGING_PREFIX}{os.getpid()}-{random_source.token_hex(6)}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except OSError as error:
            raise _write_error(self.store_dir, "cannot create a staging file", error) from error
        return _Staging(path, os.fdopen(fd, "wb"))

    # -- the nightly side: verify and commit, no secret

    def ingest(self, stream: envelope.Readable, *, now: dt.datetime | None = None) -> IngestResult:
        """Verify a snapshot file read from `stream` (steps 1-13) and commit it atomically.

        Raises a SnapshotRejected subclass; then the current snapshot is untouched and no staging
        file remains. Returns outcome "unchanged" when the file is the current snapshot again, and
        "quarantined" when it verified but lost too many patients (it is kept in quarantine/).
        """
        self.require_initialized()
        config = self.config
        now = now or utcnow()
        trusted = self.trusted_keys()
        # While a key rotation waits for the publisher, files sealed to the previous key are still accepted.
        appliance_ids = rotation.accepted_key_ids(self.home)
        self.cleanup_staging()

        def decide(header: envelope.Header, state: dict[str, Any]) -> IngestResult | None:
            """None for a new file to store; otherwise what to answer without storing anything."""
            is_new = envelope.check_policy(
                header,
                appliance_key_id=next((i for i in appliance_ids if header.for_recipient(i)), appliance_ids[0]),
                previous=self.previous(state),
                now=now,
                max_sequence_jump=config.max_sequence_jump,
                clock_skew=dt.timedelta(seconds=config.clock_skew_seconds),
                max_validity=dt.timedelta(days=config.max_validity_days),
            )
            if not is_new:
                return IngestResult("unchanged", header, self.store_dir / _file_name(header))
            waiting = self.quarantine_dir / _file_name(header)
            held = self._verified_digest(waiting, trusted)
            if held is None:
                return None
            if held != header.payload.sha256:
                raise Equivocation(
                    f"sequence {header.sequence} was already received (quarantined) with another content "
                    f"({held[:16]}…, now {header.payload.sha256[:16]}…)"
                )
            shrink = self._shrink(header, state)
            if shrink is None:
                return None  # an operator accepted a smaller snapshot meanwhile: this one now fits
            return IngestResult("quarantined", header, waiting, shrink, again=True)

        header = envelope.read_header(stream, trusted, max_file_size=config.max_file_size)
        if header.schema_version != SCHEMA_VERSION:
            # Stored, it would become current and fail at unlock; after a few nights retention would
            # leave nothing this appliance can open. Refused here, the last good snapshot stays.
            raise UnsupportedFormat(
                f"snapshot schema version {header.schema_version}, this appliance reads {SCHEMA_VERSION}: "
                "update Continuity",
                message_fr="Le fichier reçu vient d'une version plus récente de Continuity : mettez à jour "
                "ce poste. Les données précédentes restent utilisées.",
            )
        early = decide(header, self.read_state())
        if early is not None:
            return early
        staging = self._new_staging()
        try:
            self._receive(stream, header, staging)
            with self.locked():
                # Another pull or watch may have committed meanwhile: decide again on the fresh state.
                state = self.read_state()
                late = decide(header, state)
                if late is not None:
                    return late
                shrink = self._shrink(header, state)
                if shrink is not None:
                    waiting = self._quarantine(staging.path, header, state, shrink)
                    return IngestResult("quarantined", header, waiting, shrink)
                target = self.store_dir / _file_name(header)
                self._commit(staging.path, target, header, state, now)
        finally:
            with contextlib.suppress(FileNotFoundError):
                staging.path.unlink()
        return IngestResult("accepted", header, target)

    def _receive(self, stream: envelope.Readable, header: envelope.Header, staging: _Staging) -> None:
        """Steps 11-13 into the staging file, fsynced. A full disk is a StoreError, never a traceback."""
        handle = staging.handle
        try:
            handle.write(header.envelope)
            envelope.copy_payload(stream, header, handle)
            handle.flush()
            os.fsync(handle.fileno())
        except OSError as error:
            _close_quietly(handle)  # closing flushes the buffer, which fails again on a full disk
            raise _write_error(staging.path, "cannot write", error) from error
        except BaseException:
            _close_quietly(handle)
            raise
        try:
            handle.close()
        except OSError as error:
            raise _write_error(staging.path, "cannot write", error) from error

    def _verified_digest(self, path: Path, trusted: list[Any]) -> str | None:
        """The payload digest in the verified header of `path`, or None if absent or no longer valid."""
        try:
            with path.open("rb") as handle:
                return envelope.read_header(handle, trusted, max_file_size=self.config.max_file_size).payload.sha256
        except FileNotFoundError:
            return None
        except (SnapshotRejected, OSError) as error:
            log.warning("quarantined file %s no longer verifies (%s): it will be replaced", path.name, error)
            return None

    def _shrink(self, header: envelope.Header, state: dict[str, Any]) -> str | None:
        """Why `header` must wait for an operator instead of becoming current, or None (issue #10)."""
        patients = patient_count(header.counts)
        if patients == 0:
            return f"snapshot {header.sequence} has no patient"
        current = state.get("current")
        if not isinstance(current, dict):
            return None
        before = patient_count(current.get("counts"))
        share = self.config.min_patient_percent
        if patients * 100 < before * share:
            return (
                f"snapshot {header.sequence} has {patients} patients against {before} in the current "
                f"snapshot {current.get('sequence')} (less than {share} %)"
            )
        return None

    def _quarantine(self, staging: Path, header: envelope.Header, state: dict[str, Any], why: str) -> Path:
        """Keep a verified file aside; pin the current snapshot so that retention never deletes it."""
        target = self.quarantine_dir / _file_name(header)
        try:
            current = state.get("current")
            if isinstance(current, dict):
                pin = self.store_dir / (str(current["file"]) + PIN_SUFFIX)
                if not pin.exists():
                    files.create_exclusive(pin, b"")
            self.quarantine_dir.mkdir(mode=0o700, exist_ok=True)
            os.replace(staging, target)
            fsync_directory(self.quarantine_dir)
        except OSError as error:
            raise _write_error(target, "cannot quarantine", error) from error
        for old in self.quarantined_files()[QUARANTINE_KEEP:]:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()
        return target

    def _commit(
        self,
        staging: Path,
        target: Path,
        header: envelope.Header,
        state: dict[str, Any],
        now: dt.datetime,
        *,
        accepted_by: str | None = None,
    ) -> None:
        try:
            os.replace(staging, target)
            fsync_directory(self.store_dir)
        except OSError as error:
            raise _write_error(target, "cannot commit", error) from error
        # The snapshot becomes current only when the state names it: a crash before this line leaves the
        # previous one current, and the next pull simply accepts the same file again.
        state["current"] = {**header.summary(), "file": target.name, "accepted_at": envelope.format_time(now)}
        if accepted_by is not None:
            state["current"]["accepted_by"] = accepted_by
        state.pop("rebuilt", None)
        self.write_state(state)
        try:
            self.alarm_path.unlink(missing_ok=True)
            self._release_pins(header)
            for stale in self.quarantined_files():
                if int(stale.name[:20]) <= header.sequence:
                    stale.unlink()  # can never be accepted now: it would be a rollback
            self._apply_retention(target)
        except OSError as error:
            # The new snapshot is committed; what is left behind costs disk space until the next commit.
            log.warning("clean-up after commit in %s failed: %s", self.home, error)

    def _release_pins(self, header: envelope.Header) -> None:
        """A snapshot back to the size of a pinned one ends that pin (an operator's smaller one does not)."""
        trusted = self.trusted_keys()
        share = self.config.min_patient_percent
        patients = patient_count(header.counts)
        for pinned in self.pinned_files():
            try:
                with pinned.open("rb") as handle:
                    before = patient_count(
                        envelope.read_header(handle, trusted, max_file_size=self.config.max_file_size).counts
                    )
            except (SnapshotRejected, OSError):
                before = 0  # no longer readable: keeping it helps nobody
            if patients * 100 >= before * share:
                pinned.with_name(pinned.name + PIN_SUFFIX).unlink(missing_ok=True)
        for orphan in self.store_dir.glob("*" + PIN_SUFFIX):
            if not orphan.with_name(orphan.name[: -len(PIN_SUFFIX)]).exists():
                orphan.unlink(missing_ok=True)

    def _apply_retention(self, current: Path) -> None:
        keep = max(1, self.config.keep)
        pinned = {path.name for path in self.pinned_files()}
        older = [p for p in self.snapshot_files() if p.name < current.name and p.name not in pinned]
        newer = [p for p in self.snapshot_files() if p.name > current.name]
        # Files newer than the current one can only be left by a crash between rename and state write.
        for path in older[keep - 1 :] + newer:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        fsync_directory(self.store_dir)

    # -- the operator's decision

    def accept_quarantined(self, sequence: int, *, by: str, now: dt.datetime | None = None) -> envelope.Header:
        """Make a quarantined snapshot current (`continuity accept SEQ`), after verifying it again.

        The checks of a pull still apply (trusted signer, this appliance, no rollback, not expired)
        except the shrink guard, which is what the operator overrides; a snapshot without any patient
        is never made current. The caller journals the decision.
        """
        self.require_initialized()
        now = now or utcnow()
        config = self.config
        path = self.quarantine_dir / f"{sequence:020d}.snap"
        if not path.is_file():
            raise NotFound(
                f"no quarantined snapshot with sequence {sequence} in {self.quarantine_dir}",
                message_fr=f"Aucun instantané n° {sequence} en quarantaine (voir « continuity status »).",
            )
        trusted = self.trusted_keys()
        with self.locked():
            state = self.read_state()
            try:
                with path.open("rb") as handle:
                    header = envelope.read_header(handle, trusted, max_file_size=config.max_file_size)
                    envelope.copy_payload(handle, header, None)  # the disk may have rotted since
            except OSError as error:
                raise StoreError(f"{path}: cannot read ({error.strerror})") from error
            if patient_count(header.counts) == 0:
                raise Quarantined(
                    f"snapshot {sequence} has no patient: it is never made current",
                    message_fr="Cet instantané ne contient aucun patient : il ne sera jamais utilisé.",
                )
            envelope.check_policy(
                header,
                appliance_key_id=self.appliance_key_id(),
                previous=self.previous(state),
                now=now,
                max_sequence_jump=config.max_sequence_jump,
                clock_skew=dt.timedelta(seconds=config.clock_skew_seconds),
                max_validity=dt.timedelta(days=config.max_validity_days),
            )
            self._commit(path, self.store_dir / _file_name(header), header, state, now, accepted_by=by)
        log.warning("quarantined snapshot %d accepted by %s", sequence, by)
        return header

    # -- the unlock side

    def open_latest(self, secrets: keys.ApplianceSecrets) -> OpenedSnapshot:
        """Decrypt and validate the current snapshot; fall back to older stored ones if it fails."""
        self.require_initialized()
        current = self.current_path()
        if current is None:
            raise NoSnapshot(f"{self.home}: no snapshot accepted yet")
        candidates = [current] + [p for p in self.snapshot_files() if p.name < current.name]
        trusted = self.trusted_keys()
        failures: list[str] = []
        first_error: ContinuityError | None = None
        for path in candidates:
            try:
                db, header = self._open_one(path, secrets, trusted)
            except (ContinuityError, OSError) as error:
                wrapped = (
                    error
                    if isinstance(error, ContinuityError)
                    else StoreError(f"{path}: cannot read ({error.strerror})")
                )
                log.error("snapshot %s cannot be opened: %s", path.name, wrapped)
                failures.append(f"{path.name}: {type(wrapped).__name__}: {wrapped}")
                first_error = first_error or wrapped
                continue
            fell_back = "; ".join(failures) if failures else None
            if fell_back:
                log.warning("using the older snapshot %s because %s", path.name, fell_back)
            return OpenedSnapshot(db=db, header=header, path=path, fell_back_from=fell_back)
        assert first_error is not None
        raise first_error

    def _open_one(self, path: Path, secrets: keys.ApplianceSecrets, trusted: list[Any]) -> tuple[SnapshotDB, Any]:
        with path.open("rb") as handle:
            header = envelope.read_header(handle, trusted, max_file_size=self.config.max_file_size)
            if header.schema_version != SCHEMA_VERSION:
                raise SnapshotDatabaseError(
                    f"snapshot schema version {header.schema_version}, this appliance reads {SCHEMA_VERSION}"
                )
            image = envelope.decrypt_payload(handle, header, secrets.box_key_for(r.key_id for r in header.recipients))
        try:
            # open_bytes only reads the buffer (len, startswith, deserialize): no 100 MB copy to bytes.
            db = open_bytes(cast(bytes, image), expected_counts=header.counts)
        finally:
            del image
        inner = db.meta.get("practice_id")
        if inner != header.practice_id:
            db.close()
            raise SnapshotDatabaseError(
                f"database is for practice {inner!r}, its signed header says {header.practice_id!r}"
            )
        return db, header


def _file_name(header: envelope.Header) -> str:
    return f"{header.sequence:020d}.snap"


def _snapshot_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if SNAPSHOT_NAME.fullmatch(p.name) and p.is_file()]
    return sorted(found, key=lambda p: p.name, reverse=True)


def _state_problem(state: Any) -> str | None:
    """Why a parsed state file cannot be used as it is, or None."""
    if not isinstance(state, dict) or state.get("version") != 1:
        return "is not a version 1 state"
    if not isinstance(state.get("attempts", []), list) or not isinstance(state.get("conditional", {}), dict):
        return "has a damaged attempts or conditional section"
    current = state.get("current")
    if current is None:
        return None
    if not isinstance(current, dict):
        return "has a damaged current entry"
    fields = {"practice_id": str, "sequence": int, "payload_sha256": str, "created_at": str, "expires_at": str}
    for name, kind in fields.items():
        if not isinstance(current.get(name), kind):
            return f"has no valid current.{name}"
    if not SNAPSHOT_NAME.fullmatch(str(current.get("file", ""))):
        return "has no valid current.file"
    try:
        envelope.parse_time(current["created_at"], "created_at")
        envelope.parse_time(current["expires_at"], "expires_at")
    except ContinuityError:
        return "has a damaged current date"
    return None


def _valid_validator(value: object) -> bool:
    return isinstance(value, str) and _VALIDATOR.fullmatch(value) is not None


def _remember_validators(state: dict[str, Any], source: str, validators: dict[str, str]) -> None:
    """Keep the HTTP validators of the most recent sources only, each one short visible ASCII."""
    kept = {k: v for k, v in validators.items() if k in ("etag", "last_modified") and _valid_validator(v)}
    remembered = state.setdefault("conditional", {})
    remembered.pop(source, None)
    remembered[source] = kept
    while len(remembered) > MAX_CONDITIONAL_SOURCES:
        remembered.pop(next(iter(remembered)))


def _close_quietly(handle: Any) -> None:
    with contextlib.suppress(OSError):
        handle.close()


def _write_error(path: Path, what: str, error: OSError) -> StoreError:
    """The store's error for a failed write; a full disk says so in French too."""
    message = f"{path}: {what} ({error.strerror or error})"
    if files.is_no_space(error):
        return StoreError(
            message,
            message_fr=(
                "Le disque du poste est plein : le fichier reçu n'a pas pu être enregistré. Les données "
                "précédentes restent utilisées. Libérez de la place (voir « continuity status »)."
            ),
        )
    return StoreError(message)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as error:
        return error.errno == errno.EPERM
    return True
