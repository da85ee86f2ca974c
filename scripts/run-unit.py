#!/usr/bin/env python3
"""Run an installed Continuity unit's exact command line the way systemd would, where systemd is not
running (a CI container, a chroot): to prove the command works under the unit's restrictions.

    sudo scripts/run-unit.py continuity-pull.service [--journal FILE]

Read from /etc/systemd/system/UNIT and applied, as systemd does: ExecStart= with its specifiers and
$VAR / ${VAR} expansion; User=, Group=, SupplementaryGroups=; Environment=, EnvironmentFile= (which
wins); LoadCredential= (copied to a private credentials directory, %d); StateDirectory= (created,
owned by the user); UMask=; ProtectSystem=strict (every mount read-only except the state directory
and ReadWritePaths=); ProtectHome=; PrivateTmp=; PrivateNetwork= (a new network namespace);
NoNewPrivileges=; MemoryDenyWriteExecute= (the kernel's PR_SET_MDWE, Linux 6.3 or newer); stdout and
stderr go to a file standing for the journal, with JOURNAL_STREAM set as systemd sets it.

Not applied (seccomp and user-namespace settings, which need systemd itself): SystemCallFilter=,
RestrictAddressFamilies=, PrivateUsers=, ProtectProc=, CapabilityBoundingSet= (the user has none).
The exit code is the command's.
"""

from __future__ import annotations

import ctypes
import grp
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

UNITS = Path("/etc/systemd/system")
PR_SET_NO_NEW_PRIVS = 38
PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
PSEUDO = ("/proc", "/sys", "/dev")


def parse_unit(path: Path) -> dict[str, list[str]]:
    """The [Service] section: each key's values in order (an empty value resets the list, as in systemd)."""
    settings: dict[str, list[str]] = {}
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line
            continue
        if section != "[Service]":
            continue
        key, _, value = line.partition("=")
        values = settings.setdefault(key.strip(), [])
        if value.strip():
            values.append(value.strip())
        else:
            values.clear()
    return settings


def yes(settings: dict[str, list[str]], key: str) -> bool:
    return bool(settings.get(key)) and settings[key][-1] not in ("no", "false", "0")


def specifiers(text: str, unit: str, credentials: str) -> str:
    instance = unit.split("@", 1)[1].rsplit(".", 1)[0] if "@" in unit else ""
    table = {"d": credentials, "S": "/var/lib", "n": unit, "i": instance, "%": "%", "t": "/run", "C": "/var/cache"}
    return re.sub(r"%(.)", lambda m: table.get(m.group(1), m.group(0)), text)


def environment_file(path: str) -> dict[str, str]:
    optional = path.startswith("-")
    try:
        text = Path(path.lstrip("-")).read_text()
    except FileNotFoundError:
        if optional:
            return {}
        raise
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;" or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def expand(command: str, env: dict[str, str]) -> list[str]:
    """ExecStart= words: ${VAR} is one word, $VAR alone is split at whitespace (zero or more words)."""
    words = []
    for word in shlex.split(command):
        alone = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if alone:
            words.extend(env.get(alone.group(1), "").split())
            continue
        words.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env.get(m.group(1), ""), word))
    return words


def plan(unit: str, journal: Path) -> dict[str, object]:
    settings = parse_unit(UNITS / unit)
    credentials = f"/run/credentials/{unit}"
    user = settings.get("User", ["root"])[-1]
    account = pwd.getpwnam(user)
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin",
        "LANG": "C.UTF-8",
        "USER": user,
        "LOGNAME": user,
        "HOME": account.pw_dir,
        "SHELL": account.pw_shell,
    }
    state = [f"/var/lib/{name}" for value in settings.get("StateDirectory", []) for name in value.split()]
    if state:
        env["STATE_DIRECTORY"] = ":".join(state)
    if settings.get("LoadCredential"):
        env["CREDENTIALS_DIRECTORY"] = credentials
    for value in settings.get("Environment", []):
        for assignment in shlex.split(specifiers(value, unit, credentials)):
            key, _, val = assignment.partition("=")
            env[key] = val
    for value in settings.get("EnvironmentFile", []):
        env.update(environment_file(specifiers(value, unit, credentials)))
    command = expand(specifiers(settings["ExecStart"][-1], unit, credentials).lstrip("-@:+!"), env)
    return {
        "unit": unit,
        "command": command,
        "env": env,
        "user": user,
        "group": settings.get("Group", [grp.getgrgid(account.pw_gid).gr_name])[-1],
        "supplementary": [g for v in settings.get("SupplementaryGroups", []) for g in v.split()],
        "umask": int(settings.get("UMask", ["0022"])[-1], 8),
        "state": state,
        "state_mode": int(settings.get("StateDirectoryMode", ["0755"])[-1], 8),
        "read_write": [p for v in settings.get("ReadWritePaths", []) for p in v.split()],
        "credentials": credentials,
        "load_credentials": [v.split(":", 1) for v in settings.get("LoadCredential", [])],
        "protect_system": settings.get("ProtectSystem", ["no"])[-1],
        "protect_home": yes(settings, "ProtectHome"),
        "private_tmp": yes(settings, "PrivateTmp"),
        "private_network": yes(settings, "PrivateNetwork"),
        "no_new_privileges": yes(settings, "NoNewPrivileges"),
        "mdwe": yes(settings, "MemoryDenyWriteExecute"),
        "journal": str(journal),
    }


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def inside(spec: dict[str, object]) -> None:
    """In the new mount (and network) namespace, as root: lay out the sandbox, drop privileges, exec.

    The sandbox is the whole tree bound again under a new root (so that it works inside a chroot too,
    where / is no mount point), its mounts made read-only, the writable paths bound back on top."""
    account = pwd.getpwnam(str(spec["user"]))
    gid = grp.getgrnam(str(spec["group"])).gr_gid
    for directory in spec["state"]:  # type: ignore[attr-defined]
        Path(directory).mkdir(parents=True, exist_ok=True)
        os.chown(directory, account.pw_uid, gid)
        os.chmod(directory, int(spec["state_mode"]))  # type: ignore[call-overload]
    if any(" shared:" in line for line in Path("/proc/self/mountinfo").read_text().splitlines()):
        raise SystemExit("shared mounts here: the sandbox's mounts would leak out (use systemd-run on a systemd host)")
    root = Path("/mnt/continuity-unit-sandbox")
    root.mkdir(parents=True, exist_ok=True)
    Path(str(spec["credentials"])).parent.mkdir(parents=True, exist_ok=True)  # before / turns read-only
    mount("--rbind", "/", str(root))
    if spec["protect_system"] == "strict":
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        for point in mounts:
            inner = "/" + point[len(str(root)):].lstrip("/") if point.startswith(str(root)) else None
            if inner is None or inner.startswith(PSEUDO):
                continue
            subprocess.run(["mount", "-o", "remount,bind,ro", point], stderr=subprocess.DEVNULL, check=False)
        for path in [*spec["state"], *spec["read_write"]]:  # type: ignore[misc]
            mount("--bind", path, f"{root}{path}")
    if spec["load_credentials"]:
        credentials = Path(f"{root}{spec['credentials']}")
        mount("-t", "tmpfs", "-o", "mode=0700,nosuid,nodev,noexec", "tmpfs", str(credentials.parent))
        credentials.mkdir()
        for name, source in spec["load_credentials"]:  # type: ignore[attr-defined]
            target = credentials / name
            shutil.copyfile(source, target)
            os.chown(target, account.pw_uid, gid)
            os.chmod(target, 0o400)
        os.chown(credentials, account.pw_uid, gid)
        os.chmod(credentials, 0o500)
        os.chmod(credentials.parent, 0o755)
    if spec["private_tmp"]:
        for path in ("/tmp", "/var/tmp"):
            mount("-t", "tmpfs", "-o", "mode=1777,nosuid,nodev", "tmpfs", f"{root}{path}")
    if spec["protect_home"]:
        for path in ("/home", "/root", "/run/user"):
            if Path(path).is_dir():
                mount("-t", "tmpfs", "-o", "ro,mode=0755", "tmpfs", f"{root}{path}")
    journal = os.open(str(spec["journal"]), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    info = os.fstat(journal)
    env = dict(spec["env"])  # type: ignore[call-overload]
    env["JOURNAL_STREAM"] = f"{info.st_dev}:{info.st_ino}"
    os.dup2(journal, 1)
    os.dup2(journal, 2)
    stdin = os.open("/dev/null", os.O_RDONLY)
    os.dup2(stdin, 0)
    os.chroot(root)
    groups = [gid, *(grp.getgrnam(name).gr_gid for name in spec["supplementary"])]  # type: ignore[attr-defined]
    os.setgroups(groups)
    os.setgid(gid)
    os.setuid(account.pw_uid)
    libc = ctypes.CDLL(None, use_errno=True)
    if spec["no_new_privileges"] and libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    if spec["mdwe"] and libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_MDWE (MemoryDenyWriteExecute needs Linux 6.3 or newer)")
    os.umask(int(spec["umask"]))  # type: ignore[call-overload]
    os.chdir("/")
    command = list(spec["command"])  # type: ignore[call-overload]
    os.execve(command[0], command, env)


def main() -> int:
    if len(sys.argv) >= 3 and sys.argv[1] == "--inside":
        inside(json.loads(sys.argv[2]))
        return 127
    if len(sys.argv) not in (2, 4) or (len(sys.argv) == 4 and sys.argv[2] != "--journal"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    unit = sys.argv[1]
    journal = Path(sys.argv[3] if len(sys.argv) == 4 else f"/tmp/{unit}.journal").resolve()
    spec = plan(unit, journal)
    print("$", shlex.join(spec["command"]), file=sys.stderr)  # type: ignore[arg-type]
    # In a chroot "/" is no mount point and cannot be made private: keep the propagation as it is,
    # and inside() refuses to mount anything if some mount would propagate back out.
    mount_points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    propagation = "private" if "/" in mount_points else "unchanged"
    namespaces = ["--mount", "--propagation", propagation] + (["--net"] if spec["private_network"] else [])
    journal.touch()
    start = journal.stat().st_size
    child = subprocess.Popen(["unshare", *namespaces, sys.executable, __file__, "--inside", json.dumps(spec)])
    # `systemctl stop`: SIGTERM reaches the service (unshare execs it, so the child is the service).
    signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
    returncode = child.wait()
    with journal.open() as handle:
        handle.seek(start)
        for line in handle:
            print(f"  journal: {line}", end="", file=sys.stderr)
    print(f"  exit code {returncode}", file=sys.stderr)
    return returncode


if __name__ == "__main__":
    sys.exit(main())
