"""Process hardening once secrets are in memory: no core dump, no ptrace by other processes of the user.

After an unlock the process holds the appliance keys and the decrypted database. A crash would write
them into a core file; another process of the same user could read them through ptrace or
/proc/<pid>/mem. `PR_SET_DUMPABLE = 0` (Linux prctl) forbids both (root still can: see
docs/threat-model.md). It cannot be undone for the life of the process, which is what we want.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4

_done = False


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        return ctypes.CDLL(name, use_errno=True)
    except OSError as error:
        log.warning("cannot load the C library (%s): the process stays dumpable", error)
        return None


def make_non_dumpable() -> bool:
    """Mark this process non-dumpable (Linux). Returns True when it is (or already was)."""
    global _done
    if _done:
        return True
    libc = _libc()
    if libc is None:
        log.warning("not Linux: the unlocked process cannot be made non-dumpable")
        return False
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_DUMPABLE) failed: errno %d", ctypes.get_errno())
        return False
    _done = True
    return True


def is_dumpable() -> bool | None:
    """What the kernel says (None where it cannot be asked)."""
    libc = _libc()
    if libc is None:
        return None
    return bool(libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0))
