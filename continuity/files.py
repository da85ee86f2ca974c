"""Crash-safe file writes (atomic replacement, exclusive private creation, both fsynced) and free space."""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path


def fsync_directory(path: Path) -> None:
    """Make a rename or a creation in `path` durable (the directory entry is data too)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Temp file in the same directory, fsync, rename over the target, fsync the directory.

    Readers see the old content or the new one, never a mix, even after a crash. Raises OSError;
    the temp file is removed on failure.
    """
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
        fsync_directory(path.parent)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def create_exclusive(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Create a new file (never following a link, never overwriting: FileExistsError), fsynced."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


# errno values meaning "no room left": the file system is full, or the user's quota is reached.
NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_no_space(error: BaseException) -> bool:
    """True for an OSError saying the disk (or the quota) is full."""
    return isinstance(error, OSError) and error.errno in NO_SPACE_ERRNOS


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged process can still write on the file system holding `path`.

    f_bavail, not f_bfree: the blocks ext4 reserves for root are no use to the service user.
    Raises OSError if `path` cannot be examined.
    """
    info = os.statvfs(path)
    return info.f_bavail * info.f_frsize
