"""A desk key opens the interface and nothing else: no shell, no command, no forwarding, no file transfer.

Every test talks to a real sshd running the generated configuration, twice: as a complete server
(`sshd -f DIR/sshd_config`), and as the fragment included by a permissive, Debian-like main
configuration (passwords, forwarding, X11 and an sftp subsystem all switched on for everyone else).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from continuity import desk
from continuity.journal import Journal
from tests.desk.conftest import SSHD, DeskServer, free_port

REFUSED_COMMAND_FR = "aucune autre commande"
REFUSED_COMMAND_FR_WHOLE = "Ce poste ne peut ouvrir que Continuity : aucune autre commande n'est permise."


def last_actions(server: DeskServer, count: int) -> list[tuple[str, str | None, str | None]]:
    entries = list(Journal(server.home).entries())[-count:]
    return [(entry.action, entry.details.get("desk"), entry.details.get("reason")) for entry in entries]


def test_a_command_is_refused_and_journaled(server: DeskServer) -> None:
    result = server.run(server.ssh("salle-1", command="id; echo PWNED; cat /etc/passwd"))
    assert result.returncode == desk.DeskError.exit_code, result.stderr
    assert "uid=" not in result.stdout and "PWNED" not in result.stdout and "root:" not in result.stdout
    assert REFUSED_COMMAND_FR in result.stderr
    # The person at the desk reads this stderr: the French sentence alone, not the English log line
    # (the detail is in the journal). Seen when trying it from a second terminal.
    assert result.stderr.strip().splitlines() == [f"Erreur : {REFUSED_COMMAND_FR_WHOLE}"], result.stderr
    assert last_actions(server, 1) == [("desk_refused", "salle-1", "command")]


def test_a_shell_through_a_terminal_is_refused(server: DeskServer) -> None:
    # -tt: a terminal is allocated, as for the interface; asking for a shell in it still gets nothing.
    result = server.run(server.ssh("salle-2", "-tt", command="/bin/sh -c 'echo PWNED'"))
    assert result.returncode == desk.DeskError.exit_code
    assert "PWNED" not in result.stdout.replace("echo PWNED", "")
    assert REFUSED_COMMAND_FR in result.stdout + result.stderr  # through the pty, stderr is the terminal


def test_no_terminal_no_interface(server: DeskServer) -> None:
    result = server.run(server.ssh("salle-1", "-T"))
    assert result.returncode == desk.DeskError.exit_code
    assert "ssh -t" in result.stderr
    assert "DeskError" not in result.stderr and "ERROR" not in result.stderr, result.stderr
    assert last_actions(server, 1) == [("desk_refused", "salle-1", "no_terminal")]


def test_an_unknown_key_is_refused_before_continuity_runs(server: DeskServer) -> None:
    before = server.journal_count()
    result = server.run(server.ssh("inconnu", "-T"))
    assert result.returncode == 255
    assert "Permission denied (publickey)" in result.stderr
    assert server.journal_count() == before  # Continuity never ran


def test_passwords_are_not_even_offered(server: DeskServer) -> None:
    command = server.ssh("inconnu", "-o", "PreferredAuthentications=password,keyboard-interactive", "-T")
    result = server.run(command)
    assert result.returncode == 255
    assert "Permission denied (publickey)" in result.stderr  # the only method the server lists


@contextlib.contextmanager
def ssh_background(command: list[str]) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # an ssh stuck in its forwarding loop: make sure it is gone
            process.kill()
            process.communicate()


def wait_listening(port: int, process: subprocess.Popen[str], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise AssertionError(f"ssh did not open its local port {port}")


def received_through(port: int) -> bytes:
    """What comes back through a forwarded connection: sshd's banner if forwarding worked, b'' if not."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.settimeout(5)
        try:
            return connection.recv(64)
        except (TimeoutError, ConnectionResetError):
            return b""


def test_local_forwarding_gets_nothing(server: DeskServer) -> None:
    local = free_port()
    command = server.ssh("salle-1", "-N", "-L", f"127.0.0.1:{local}:127.0.0.1:{server.port}")
    with ssh_background(command) as process:
        wait_listening(local, process)
        assert not received_through(local).startswith(b"SSH-")  # the appliance's sshd was not reached


def test_remote_forwarding_is_refused(server: DeskServer) -> None:
    forward = f"127.0.0.1:0:127.0.0.1:{server.port}"
    command = server.ssh("salle-2", "-N", "-o", "ExitOnForwardFailure=yes", "-R", forward)
    result = server.run(command, timeout=30)
    assert result.returncode == 255
    assert "remote port forwarding failed" in result.stderr


def test_dynamic_forwarding_gets_nothing(server: DeskServer) -> None:
    local = free_port()
    with ssh_background(server.ssh("salle-1", "-N", "-D", f"127.0.0.1:{local}")) as process:
        wait_listening(local, process)
        with socket.create_connection(("127.0.0.1", local), timeout=5) as socks:
            socks.settimeout(10)
            socks.sendall(b"\x05\x01\x00")
            assert socks.recv(2) == b"\x05\x00"
            socks.sendall(b"\x05\x01\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack(">H", server.port))
            reply = b""
            with contextlib.suppress(OSError):
                reply = socks.recv(10)
            # SOCKS5 reply code 0 would mean "connected"; ssh answers a failure code or hangs up.
            assert reply == b"" or reply[1] != 0
            with contextlib.suppress(OSError):
                assert not socks.recv(64).startswith(b"SSH-")


def test_sftp_gets_nothing(server: DeskServer, tmp_path: Path) -> None:
    options = server.ssh_options(server.keys["salle-1"])
    options[options.index("-p")] = "-P"  # sftp spells the port option differently
    result = server.run(["sftp", *options, "-b", "-", f"{server.user}@127.0.0.1"], stdin="ls /\nget /etc/passwd\n")
    assert result.returncode != 0
    assert "etc" not in result.stdout and "root:" not in result.stdout


@pytest.mark.parametrize("legacy", [False, True], ids=["scp-sftp", "scp-legacy"])
def test_scp_gets_nothing(server: DeskServer, tmp_path: Path, legacy: bool) -> None:
    options = server.ssh_options(server.keys["salle-2"])
    options[options.index("-p")] = "-P"
    target = tmp_path / "copie"
    result = server.run(["scp", *(["-O"] if legacy else []), *options,
                         f"{server.user}@127.0.0.1:{server.home}/desks.json", str(target)])  # fmt: skip
    assert result.returncode != 0
    assert not target.exists() or target.read_bytes() == b""


def test_a_removed_desk_key_no_longer_connects(server: DeskServer) -> None:
    registry = desk.DeskRegistry(server.home)
    kept = registry.get("salle-2")
    assert kept is not None
    registry.remove("salle-2")
    try:
        result = server.run(server.ssh("salle-2", "-T"))
        assert result.returncode == 255 and "Permission denied (publickey)" in result.stderr
    finally:
        registry.add("salle-2", kept.key, printer=kept.printer)


def test_effective_settings_for_the_service_user(server: DeskServer) -> None:
    """What sshd itself says it will apply to the desks' user (sshd -T), whatever the main config says."""
    config = next(server.base.glob("sshd/system_sshd_config"), server.base / "sshd" / "sshd_config")
    result = subprocess.run([SSHD, "-T", "-f", str(config), "-C", f"user={server.user},host=desk,addr=127.0.0.1"],
                            capture_output=True, text=True, check=True)  # fmt: skip
    settings = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    expected = {
        "passwordauthentication": "no", "kbdinteractiveauthentication": "no", "disableforwarding": "yes",
        "allowtcpforwarding": "no", "allowagentforwarding": "no", "allowstreamlocalforwarding": "no",
        "x11forwarding": "no", "permittunnel": "no", "authenticationmethods": "publickey", "maxsessions": "1",
        "permituserrc": "no", "logingracetime": "30", "maxauthtries": "3", "maxstartups": "10:30:60",
        "allowusers": server.user, "authorizedkeysfile": str(server.home / "ssh" / "authorized_keys"),
    }  # fmt: skip
    assert {key: settings.get(key) for key in expected} == expected
