"""A real OpenSSH server for the desk tests: the generated configuration, a demo appliance home, desk keys.

The server is `/usr/sbin/sshd -D -f DIR/sshd_config` exactly as docs/desks.md runs it, on a free port
of 127.0.0.1, logging the service user (the one running the tests) in with desk keys only. Tests skip,
saying why, only where sshd cannot run at all (not installed: `.ci/run` installs openssh-server).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from continuity import demo, desk, keys
from continuity.journal import Journal

SSHD = desk.SSHD_BINARY
TEST_PRINTER = os.environ.get("CONTINUITY_TEST_PRINTER", "continuity-pdf")
DESKS = ("salle-1", "salle-2")
# What Debian's /etc/ssh/sshd_config says around its Include line, plus what an administrator might
# add: the desks' fragment must win over all of it for the service user.
SYSTEM_LIKE_CONFIG = """\
Include {fragment}
Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {pid}
UsePAM no
KbdInteractiveAuthentication no
PasswordAuthentication yes
AllowTcpForwarding yes
AllowAgentForwarding yes
X11Forwarding yes
PermitTunnel yes
GatewayPorts yes
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
"""


def sshd_skip_reason() -> str | None:
    if not Path(SSHD).is_file():
        return f"{SSHD} not installed (openssh-server; .ci/run installs it)"
    if shutil.which("ssh") is None:
        return "ssh client not installed (openssh-client)"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"sshd exited with {process.returncode}: {log.read_text(errors='replace')}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise AssertionError(f"sshd did not listen on {port}: {log.read_text(errors='replace')}")


def strict_modes_base() -> Path:
    """A fresh directory sshd's StrictModes accepts (no world-writable parent such as /tmp)."""
    uid = os.getuid()
    candidates = [Path(tempfile.gettempdir()), Path("/run"), Path("/var/tmp"), Path.home(), Path.cwd()]
    for candidate in candidates:
        if desk.strict_modes_problem(candidate, uid) is None and os.access(candidate, os.W_OK):
            return Path(tempfile.mkdtemp(prefix="continuity-desks-", dir=candidate))
    pytest.skip("no writable directory without a world-writable parent for sshd's StrictModes")


@dataclass
class DeskServer:
    base: Path
    home: Path
    port: int
    user: str
    known_hosts: Path
    log: Path
    process: subprocess.Popen[bytes]
    keys: dict[str, Path] = field(default_factory=dict)  # desk name (or "inconnu") -> private key
    printer: str | None = None
    passphrases: dict[str, str] = field(default_factory=dict)
    practice: demo.DemoPractice | None = None

    def ssh_options(self, key: Path) -> list[str]:
        return [
            "-F", "/dev/null", "-p", str(self.port), "-i", str(key),
            "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
            "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR",
        ]  # fmt: skip

    def ssh(self, name: str, *options: str, command: str | None = None) -> list[str]:
        """The command line a desk PC runs (`ssh -t continuity@appliance` in docs/desks.md), plus `options`."""
        tail = [command] if command is not None else []
        return ["ssh", *self.ssh_options(self.keys[name]), *options, f"{self.user}@127.0.0.1", *tail]

    def run(self, command: list[str], *, timeout: float = 30, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)

    def journal_count(self) -> int:
        return sum(1 for _ in Journal(self.home).entries())


def make_desk_key(folder: Path, name: str) -> Path:
    path = folder / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{name}@cabinet", "-f", str(path)],
                   check=True)  # fmt: skip
    return path


def printer_available() -> bool:
    if shutil.which("lpstat") is None:
        return False
    result = subprocess.run(["lpstat", "-p", TEST_PRINTER], capture_output=True, text=True, check=False,
                            env={**os.environ, "LC_ALL": "C"})  # fmt: skip
    return result.returncode == 0 and " disabled " not in f" {result.stdout} "


def wait_for_printer_idle(timeout: float = 180) -> None:
    """Leave the shared test queue empty: cups-pdf finishing our jobs later would land in another test's
    output folder (tests/unit/test_printing.py reads the newest PDF cups-pdf writes)."""
    if not printer_available():
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = subprocess.run(["lpstat", "-o", TEST_PRINTER], capture_output=True, text=True, check=False,
                              env={**os.environ, "LC_ALL": "C"}).stdout.strip()  # fmt: skip
        if not jobs:
            time.sleep(2)  # the last job's PDF is being written after it leaves the queue
            return
        time.sleep(0.5)


@contextlib.contextmanager
def desk_server(*, system_like: bool = False, patients: int = 200) -> Iterator[DeskServer]:
    """An appliance home with two desks, and a real sshd running the generated configuration."""
    reason = sshd_skip_reason()
    if reason:
        pytest.skip(reason)
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    base = strict_modes_base()
    process: subprocess.Popen[bytes] | None = None
    try:
        # Real key derivation: sshd gives the forced command a clean environment, and a keyslot made with
        # the weak test parameters is refused outside the test process (as it should be).
        with pytest.MonkeyPatch.context() as patch:
            patch.delenv(keys.WEAK_KDF_ENV, raising=False)
            practice = demo.prepare(base / "home", patients=patients, today=dt.date.today())
        home = practice.home
        user = getpass.getuser()
        port = free_port()
        written = desk.write_sshd_config(base / "sshd", home=home, port=port, user=user, listen=["127.0.0.1"])
        config = written.config
        if system_like:
            config = base / "sshd" / "system_sshd_config"
            text = SYSTEM_LIKE_CONFIG.format(fragment=written.fragment, port=port, host_key=written.host_key,
                                             pid=base / "sshd" / "pid")  # fmt: skip
            config.write_text(text)
        check = subprocess.run([SSHD, "-t", "-f", str(config)], capture_output=True, text=True, check=False)
        assert check.returncode == 0, f"sshd refuses the generated configuration: {check.stderr}"
        host_pub = written.host_key.with_name(written.host_key.name + ".pub").read_text().split()
        known_hosts = base / "known_hosts"
        known_hosts.write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
        printer = TEST_PRINTER if printer_available() else None
        server_keys = {}
        continuity = desk.continuity_executable()
        for name in DESKS:
            server_keys[name] = make_desk_key(base, name)
            command = [str(continuity), "desk", "add", name, "--key", f"{server_keys[name]}.pub", "--home", str(home)]
            added = subprocess.run(command + (["--printer", printer] if printer else []), capture_output=True,
                                   text=True, check=False)  # fmt: skip
            assert added.returncode == 0, added.stderr
        server_keys["inconnu"] = make_desk_key(base, "inconnu")
        log = base / "sshd.log"
        with log.open("wb") as log_file:
            process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log_file, stderr=log_file)
        wait_for_port(port, process, log)
        yield DeskServer(base, home, port, user, known_hosts, log, process, server_keys, printer,
                         dict(practice.users), practice)  # fmt: skip
    finally:
        wait_for_printer_idle()
        if process is not None:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        shutil.rmtree(base, ignore_errors=True)  # the demo's platform side is in there too


@pytest.fixture(scope="module", params=["standalone", "system-include"])
def server(request: pytest.FixtureRequest) -> Iterator[DeskServer]:
    with desk_server(system_like=request.param == "system-include") as running:
        yield running
