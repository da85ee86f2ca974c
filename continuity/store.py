"""The appliance home: inbox/, store/, state file, atomic commits, retention, and opening at unlock.

Layout and commit protocol: docs/snapshot-format.md §7 and §9. The nightly side (`ingest`) holds no
secret; `open_latest` is the only place that decrypts, with secrets from an opened keyslot.
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
    NoSnapshot,
    NotInitialized,
    SnapshotDatabaseError,
    SnapshotRejected,
    StoreError,
)
from continuity.snapshotdb import SCHEMA_VERSION, SnapshotDB, open_bytes

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
CONFIG_FILE = "config.json"
LOCK_FILE = ".lock"
INBOX = "inbox"
REJECTED = "rejected"
STORE = "store"
STAGING_PREFIX = ".staging-"
MAX_ATTEMPTS = 50
MAX_STATE_FILE = 1 << 20
SNAPSHOT_NAME = re.compile(r"(\d{20})\.snap")

Outcome = str  # "accepted" | "unchanged" | "rejected"


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
        return cls(**raw)


@dataclass(frozen=True)
class IngestResult:
    outcome: Outcome  # "accepted" or "unchanged"
    header: envelope.Header
    path: Path


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
        self.state_path = self.home / STATE_FILE

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
        """Serialise commits and state updates between `pull`, `watch` and `status`."""
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

    def _read_state_file(self) -> dict[str, Any] | None:
        try:
            with self.state_path.open("rb") as handle:
                raw = handle.read(MAX_STATE_FILE + 1)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StoreError(f"{self.state_path}: cannot read ({error.strerror})") from error
        try:
            state = json.loads(raw) if len(raw) <= MAX_STATE_FILE else None
        except ValueError:
            state = None
        if not isinstance(state, dict) or state.get("version") != 1:
            log.warning("%s is unreadable: rebuilding it from the stored snapshots", self.state_path)
            return None
        return state

    def read_state(self) -> dict[str, Any]:
        """The state; rebuilt from the newest verified stored file if it is missing or damaged."""
        state = self._read_state_file()
        if state is None:
            state = self._rebuild_state()
        current = state.get("current")
        if isinstance(current, dict) and not (self.store_dir / str(current.get("file", ""))).is_file():
            log.warning("current snapshot file %s is missing: rebuilding the state", current.get("file"))
            rebuilt = self._rebuild_state()
            rebuilt["attempts"] = state.get("attempts", [])
            rebuilt["conditional"] = state.get("conditional", {})
            state = rebuilt
        return state

    def _rebuild_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"version": 1, "current": None, "attempts": [], "conditional": {}}
        trusted = self.trusted_keys() if (self.home / keys.TRUSTED).is_dir() else []
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
        """Remember one pull attempt (the last MAX_ATTEMPTS are kept) for `status` and the TUI."""
        attempt: dict[str, Any] = {
            "at": envelope.format_time(now or utcnow()),
            "source": source,
            "outcome": outcome,
            "reason": reason,
            "detail": detail,
            "sequence": sequence,
        }
        with self.locked():
            state = self.read_state()
            state["attempts"] = ([attempt] + list(state.get("attempts", [])))[:MAX_ATTEMPTS]
            if conditional is not None:
                state.setdefault("conditional", {})[source] = conditional
            self.write_state(state)
        return attempt

    def conditional(self, source: str) -> dict[str, str]:
        """The HTTP validators (ETag, Last-Modified) remembered for a source."""
        found = self.read_state().get("conditional", {}).get(source)
        return dict(found) if isinstance(found, dict) else {}

    # -- files

    def snapshot_files(self) -> list[Path]:
        """Stored snapshot files, newest sequence first."""
        if not self.store_dir.is_dir():
            return []
        found = [p for p in self.store_dir.iterdir() if SNAPSHOT_NAME.fullmatch(p.name) and p.is_file()]
        return sorted(found, key=lambda p: p.name, reverse=True)

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
            raise StoreError(f"{self.store_dir}: cannot create a staging file ({error.strerror})") from error
        return _Staging(path, os.fdopen(fd, "wb"))

    # -- the nightly side: verify and commit, no secret

    def ingest(self, stream: envelope.Readable, *, now: dt.datetime | None = None) -> IngestResult:
        """Verify a snapshot file read from `stream` (steps 1-13) and commit it atomically.

        Raises a SnapshotRejected subclass; then the current snapshot is untouched and no staging
        file remains. Returns outcome "unchanged" when the file is the current snapshot again.
        """
        self.require_initialized()
        config = self.config
        now = now or utcnow()
        trusted = self.trusted_keys()
        # While a key rotation waits for the publisher, files sealed to the previous key are still accepted.
        appliance_ids = rotation.accepted_key_ids(self.home)
        self.cleanup_staging()

        def check(header: envelope.Header, state: dict[str, Any]) -> bool:
            return envelope.check_policy(
                header,
                appliance_key_id=next((i for i in appliance_ids if header.for_recipient(i)), appliance_ids[0]),
                previous=self.previous(state),
                now=now,
                max_sequence_jump=config.max_sequence_jump,
                clock_skew=dt.timedelta(seconds=config.clock_skew_seconds),
                max_validity=dt.timedelta(days=config.max_validity_days),
            )

        header = envelope.read_header(stream, trusted, max_file_size=config.max_file_size)
        if not check(header, self.read_state()):
            return IngestResult("unchanged", header, self.store_dir / _file_name(header))
        staging = self._new_staging()
        try:
            try:
                staging.handle.write(header.envelope)
                envelope.copy_payload(stream, header, staging.handle)
                staging.handle.flush()
                os.fsync(staging.handle.fileno())
            except OSError as error:
                raise StoreError(f"{staging.path}: cannot write ({error.strerror})") from error
            finally:
                staging.handle.close()
            with self.locked():
                # Another pull or watch may have committed meanwhile: decide again on the fresh state.
                state = self.read_state()
                target = self.store_dir / _file_name(header)
                if not check(header, state):
                    return IngestResult("unchanged", header, target)
                self._commit(staging.path, target, header, state, now)
        finally:
            with contextlib.suppress(FileNotFoundError):
                staging.path.unlink()
        return IngestResult("accepted", header, target)

    def _commit(
        self, staging: Path, target: Path, header: envelope.Header, state: dict[str, Any], now: dt.datetime
    ) -> None:
        try:
            os.replace(staging, target)
            fsync_directory(self.store_dir)
        except OSError as error:
            raise StoreError(f"{target}: cannot commit ({error.strerror})") from error
        # The snapshot becomes current only when the state names it: a crash before this line leaves the
        # previous one current, and the next pull simply accepts the same file again.
        state["current"] = {**header.summary(), "file": target.name, "accepted_at": envelope.format_time(now)}
        self.write_state(state)
        try:
            self._apply_retention(target)
        except OSError as error:
            # The new snapshot is committed; old files left behind only cost disk space until the next pull.
            log.warning("retention in %s failed: %s", self.store_dir, error)

    def _apply_retention(self, current: Path) -> None:
        keep = max(1, self.config.keep)
        older = [p for p in self.snapshot_files() if p.name < current.name]
        newer = [p for p in self.snapshot_files() if p.name > current.name]
        # Files newer than the current one can only be left by a crash between rename and state write.
        for path in older[keep - 1 :] + newer:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        fsync_directory(self.store_dir)

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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as error:
        return error.errno == errno.EPERM
    return True
