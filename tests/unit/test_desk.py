"""Desks: key files parsed as hostile input, the registry and its authorized_keys, the sshd configuration."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import struct
import subprocess
from pathlib import Path

import pytest

from continuity import desk
from continuity.desk import DeskError, DeskKey, DeskPresence, DeskRegistry

needs_ssh_keygen = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen (openssh-client) missing")


def make_key(folder: Path, name: str, *args: str) -> Path:
    """A real key pair made by ssh-keygen; returns the .pub file."""
    path = folder / name
    subprocess.run(["ssh-keygen", "-q", "-N", "", "-C", f"{name}@poste", "-f", str(path), *args], check=True)
    return path.with_name(name + ".pub")


def ssh_keygen_fingerprint(pub: Path) -> str:
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(pub)], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    return out.split()[1]


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "keys"
    folder.mkdir()
    return folder


@pytest.fixture
def ed25519(keys_dir: Path) -> Path:
    return make_key(keys_dir, "salle2", "-t", "ed25519")


@pytest.fixture
def registry(tmp_path: Path) -> DeskRegistry:
    home = tmp_path / "home"
    home.mkdir()
    return DeskRegistry(home, executable=Path("/opt/continuity/.venv/bin/continuity"))


# --- key files ---------------------------------------------------------------------------------------


@needs_ssh_keygen
@pytest.mark.parametrize("args", [("-t", "ed25519"), ("-t", "ecdsa", "-b", "256"), ("-t", "ecdsa", "-b", "521"),
                                  ("-t", "rsa", "-b", "3072")])  # fmt: skip
def test_real_keys_are_accepted_with_openssh_fingerprint(keys_dir: Path, args: tuple[str, ...]) -> None:
    pub = make_key(keys_dir, "poste", *args)
    key = desk.read_key_file(pub)
    assert key.fingerprint == ssh_keygen_fingerprint(pub)
    assert key.line == " ".join(pub.read_text().split()[:2])


@needs_ssh_keygen
def test_short_rsa_and_private_keys_are_refused(keys_dir: Path) -> None:
    short = make_key(keys_dir, "vieux", "-t", "rsa", "-b", "2048")
    with pytest.raises(DeskError, match="2048 bits") as caught:
        desk.read_key_file(short)
    assert "3072" in caught.value.message_fr
    with pytest.raises(DeskError, match="private key") as caught:
        desk.read_key_file(keys_dir / "vieux")  # the private half
    assert "PRIVÉE" in caught.value.message_fr


def test_comment_newline_injection_is_refused(ed25519: Path, registry: DeskRegistry) -> None:
    # The attack: a second authorized_keys line, without restrictions, hidden after the comment.
    type_, key_b64 = ed25519.read_text().split()[:2]
    hostile = f'{type_} {key_b64} salle2\ncommand="/bin/sh" {type_} {key_b64} root\n'
    with pytest.raises(DeskError, match="more than one line") as caught:
        desk.parse_public_key(hostile)
    assert "plusieurs lignes" in caught.value.message_fr
    for smuggled in ("\r", "\x00", "\x1b[2J", "\u2028"):
        with pytest.raises(DeskError):
            desk.parse_public_key(f"{type_} {key_b64} salle2{smuggled}command=x\n")
    assert not registry.authorized_keys.exists()


def test_options_before_the_key_are_refused(ed25519: Path) -> None:
    line = ed25519.read_text().strip()
    for prefix in ('command="/bin/sh" ', "no-pty ", 'permitopen="*:*",from="*" ', "restrict,pty "):
        with pytest.raises(DeskError, match="options|not accepted") as caught:
            desk.parse_public_key(prefix + line)
        assert "Fichier de clé refusé" in caught.value.message_fr


def test_hostile_comment_never_reaches_authorized_keys(ed25519: Path, registry: DeskRegistry) -> None:
    type_, key_b64 = ed25519.read_text().split()[:2]
    key = desk.parse_public_key(f'{type_} {key_b64} x" ,command="/bin/sh",permitopen="*:*" y\n')
    registry.add("salle-2", key)
    text = registry.authorized_keys.read_text()
    assert "/bin/sh" not in text and "permitopen" not in text
    [line] = [row for row in text.splitlines() if not row.startswith("#")]
    assert line.startswith('restrict,pty,command="exec /usr/bin/env LC_ALL=C.UTF-8 ')
    assert line.endswith(f" {type_} {key_b64} continuity-desk-salle-2")


def _blob(*parts: bytes) -> str:
    return base64.b64encode(b"".join(struct.pack(">I", len(p)) + p for p in parts)).decode()


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("ssh-ed25519\n", "no key"),
        ("ssh-ed25519 !!!notbase64\n", "base64"),
        (f"ssh-ed25519 {_blob(b'ssh-rsa', b'x' * 32)}\n", "says"),
        (f"ssh-ed25519 {_blob(b'ssh-ed25519', b'x' * 31)}\n", "32 bytes"),
        (f"ssh-ed25519 {_blob(b'ssh-ed25519', b'x' * 32, b'extra')}\n", "fields"),
        ("ssh-ed25519 " + base64.b64encode(b"\x00\x00\x00\xffabc").decode() + "\n", "malformed"),
        (f"ecdsa-sha2-nistp256 {_blob(b'ecdsa-sha2-nistp256', b'nistp384', b'point')}\n", "curve"),
        ("ssh-dss AAAAB3NzaC1kc3MAAACBAP\n", "not accepted"),
        ("PuTTY-User-Key-File-3: ssh-ed25519\n", "not accepted"),
    ],
)
def test_malformed_key_files_are_refused(text: str, detail: str) -> None:
    with pytest.raises(DeskError, match=detail):
        desk.parse_public_key(text)


def test_oversized_and_binary_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DeskError, match="bytes"):
        desk.parse_public_key(b"ssh-ed25519 " + b"A" * 20000)
    with pytest.raises(DeskError, match="UTF-8"):
        desk.parse_public_key(b"\xff\xfe\x00ssh")
    with pytest.raises(DeskError, match="cannot read") as caught:
        desk.read_key_file(tmp_path / "absent.pub")
    assert "illisible" in caught.value.message_fr


@needs_ssh_keygen
def test_ssh_keygen_is_the_second_opinion(ed25519: Path) -> None:
    key = desk.parse_public_key(ed25519.read_bytes())
    assert desk.verify_with_ssh_keygen(key) == key.fingerprint
    # A structurally fine ed25519 blob that OpenSSH's parser still reads: ours and its agree on the hash.
    odd = DeskKey("ssh-ed25519", base64.b64decode(_blob(b"ssh-ed25519", b"\x01" * 32)))
    assert desk.verify_with_ssh_keygen(odd) == odd.fingerprint
    with pytest.raises(DeskError, match="not found"):
        desk.verify_with_ssh_keygen(key, ssh_keygen="/nonexistent/ssh-keygen")


# --- names -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["accueil", "salle-2", "s", "cabinet-dr-martin", "a" * 32, "2"])
def test_good_desk_names(name: str) -> None:
    assert desk.check_desk_name(name) == name


@pytest.mark.parametrize("name", ["", "Salle2", "salle 2", "-salle", "salle-", "salle_2", "a" * 33, "réception",
                                  "../etc", "salle\n2", 'x"y', "salle;sh"])  # fmt: skip
def test_bad_desk_names_say_the_rule_in_french(name: str) -> None:
    with pytest.raises(DeskError) as caught:
        desk.check_desk_name(name)
    assert "Nom de poste invalide" in caught.value.message_fr
    assert "\n" not in caught.value.message_fr


@pytest.mark.parametrize("queue", ["bad queue", "a/b", "#x", 'x"', ""])
def test_bad_printer_names(queue: str) -> None:
    with pytest.raises(DeskError, match="printer queue"):
        desk.check_queue_name(queue)


# --- the registry ----------------------------------------------------------------------------------


def test_add_list_remove(registry: DeskRegistry, keys_dir: Path, ed25519: Path) -> None:
    other = desk.parse_public_key(make_key(keys_dir, "accueil", "-t", "ed25519").read_bytes())
    first = registry.add("salle-2", desk.parse_public_key(ed25519.read_bytes()), printer="salle2-laser")
    registry.add("accueil", other)
    assert [d.name for d in registry.desks()] == ["accueil", "salle-2"]
    assert registry.get("salle-2") == first and first.printer == "salle2-laser"
    assert stat.S_IMODE(registry.authorized_keys.stat().st_mode) == 0o600
    assert stat.S_IMODE(registry.authorized_keys.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(registry.path.stat().st_mode) == 0o600
    text = registry.authorized_keys.read_text()
    assert "--desk salle-2" in text and "--desk accueil" in text
    assert f"--home {registry.home}" in text
    registry.remove("salle-2")
    assert [d.name for d in registry.desks()] == ["accueil"]
    assert "salle-2" not in registry.authorized_keys.read_text()
    with pytest.raises(DeskError) as caught:
        registry.remove("salle-2")
    assert "Aucun poste" in caught.value.message_fr


def test_one_key_one_desk_and_replace(registry: DeskRegistry, keys_dir: Path, ed25519: Path) -> None:
    key = desk.parse_public_key(ed25519.read_bytes())
    registry.add("salle-2", key)
    with pytest.raises(DeskError, match="already the key of desk salle-2"):
        registry.add("salle-3", key)
    with pytest.raises(DeskError, match="already exists") as caught:
        registry.add("salle-2", key, printer="p")
    assert "--replace" in caught.value.message_fr
    new_key = desk.parse_public_key(make_key(keys_dir, "neuf", "-t", "ed25519").read_bytes())
    registry.add("salle-2", new_key, printer="p", replace=True)
    assert registry.get("salle-2") == desk.Desk("salle-2", new_key, "p", registry.get("salle-2").added_at)  # type: ignore[union-attr]
    assert key.base64 not in registry.authorized_keys.read_text()


def test_forced_command_paths_cannot_break_out(tmp_path: Path, ed25519: Path) -> None:
    key = desk.parse_public_key(ed25519.read_bytes())
    for bad in ('/opt/x"; sh; "', "/opt/a\\b", "relative/continuity", "/opt/new\nline"):
        registry = DeskRegistry(tmp_path / "home", executable=Path(bad))
        with pytest.raises(DeskError, match="forced command"):
            registry.add("salle-2", key)
    spaced = DeskRegistry(tmp_path / "home", executable=Path("/opt/my continuity/bin/continuity"))
    spaced.add("salle-2", key)
    assert "'/opt/my continuity/bin/continuity' tui" in spaced.authorized_keys.read_text()


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b'{"version": 2, "desks": []}',
        b'{"version": 1, "desks": {}}',
        b'{"version": 1, "desks": [], "desks": []}',
        b'{"version": 1, "desks": [{"name": "Salle", "key": "x", "printer": null, "added_at": "t"}]}',
        b'{"version": 1, "desks": [{"name": "s", "key": "ssh-ed25519 AAAA", "printer": null, "added_at": "t"}]}',
        b"[]",
    ],
)
def test_a_damaged_registry_is_an_error_and_no_desk_is_present(registry: DeskRegistry, content: bytes) -> None:
    registry.path.write_bytes(content)
    with pytest.raises(DeskError) as caught:
        registry.desks()
    assert "endommagée" in caught.value.message_fr
    assert DeskPresence(registry.home, "s").listed() is False


def test_a_hand_edited_registry_cannot_inject_either(registry: DeskRegistry, ed25519: Path) -> None:
    line = ed25519.read_text().split()
    desk_entry = {"name": "salle-2", "key": f"{line[0]} {line[1]}\ncommand=\"/bin/sh\" {line[0]} {line[1]}",
                  "printer": None, "added_at": "2026-11-28T08:00:00+00:00"}  # fmt: skip
    registry.path.write_text(json.dumps({"version": 1, "desks": [desk_entry]}))
    with pytest.raises(DeskError):
        registry.desks()
    with pytest.raises(DeskError):
        registry.add("accueil", desk.parse_public_key(ed25519.read_bytes()))
    assert not registry.authorized_keys.exists()


def test_presence_follows_the_registry(registry: DeskRegistry, ed25519: Path) -> None:
    presence = DeskPresence(registry.home, "salle-2")
    assert presence.listed() is False  # no registry at all
    registry.add("salle-2", desk.parse_public_key(ed25519.read_bytes()))
    assert presence.listed() is True
    registry.remove("salle-2")
    assert presence.listed() is False
    with pytest.raises(DeskError, match="not in"):
        desk.require_listed(registry.home, "salle-2")


# --- opening a session -----------------------------------------------------------------------------


def test_refusal_of_anything_but_a_terminal() -> None:
    assert desk.refusal({}, terminal=True) is None
    detail, message = desk.refusal({"SSH_ORIGINAL_COMMAND": "/bin/sh"}, terminal=True) or ("", "")
    assert "command" in detail and "aucune autre commande" in message
    assert desk.refusal({"SSH_ORIGINAL_COMMAND": ""}, terminal=True) is not None  # `ssh -t host ''`
    detail, message = desk.refusal({}, terminal=False) or ("", "")
    assert "no terminal" in detail and "ssh -t" in message


def test_use_printer_sets_the_cups_default_of_the_process(ed25519: Path) -> None:
    key = desk.parse_public_key(ed25519.read_bytes())
    environ: dict[str, str] = {"LPDEST": "ailleurs"}
    desk.use_printer(desk.Desk("salle-2", key, "salle2-laser", "t"), environ)
    assert environ == {"PRINTER": "salle2-laser", "LPDEST": "salle2-laser"}
    untouched: dict[str, str] = {}
    desk.use_printer(desk.Desk("accueil", key, None, "t"), untouched)
    assert untouched == {}


@pytest.mark.skipif(shutil.which("lpstat") is None, reason="CUPS client (lpstat) not installed")
def test_lpstat_honours_the_desk_printer() -> None:
    # What makes every print path of the interface use the desk's printer without being told.
    env = {**os.environ, "LC_ALL": "C", "PRINTER": "salle2-laser"}
    env.pop("LPDEST", None)
    out = subprocess.run(["lpstat", "-d"], capture_output=True, text=True, env=env, check=False).stdout
    if "scheduler is not running" in out or not out:
        pytest.skip("cupsd not running: lpstat -d cannot answer")
    assert "salle2-laser" in out


# --- sshd configuration ----------------------------------------------------------------------------


@needs_ssh_keygen
def test_sshd_config_files(tmp_path: Path) -> None:
    import getpass

    user = getpass.getuser()
    home = tmp_path / "home"
    out = tmp_path / "sshd"
    written = desk.write_sshd_config(out, home=home, port=22022, user=user, listen=["127.0.0.1"])
    fragment = written.fragment.read_text()
    config = written.config.read_text()
    assert f"AllowUsers {user}\n" in fragment and f"Match User {user}\n" in fragment
    for line in ("PasswordAuthentication no", "KbdInteractiveAuthentication no", "DisableForwarding yes",
                 "AllowTcpForwarding no", "X11Forwarding no", "PermitTunnel no", "AuthenticationMethods publickey",
                 "MaxSessions 1", "PermitUserRC no", f"AuthorizedKeysFile {home}/ssh/authorized_keys"):  # fmt: skip
        assert f"    {line}\n" in fragment, line
    for line in ("LoginGraceTime 30", "MaxStartups 10:30:60"):
        assert f"\n{line}\n" in fragment
    assert "\nSubsystem" not in config + fragment
    assert "Port 22022\nListenAddress 127.0.0.1\n" in config and f"Include {written.fragment}" in config
    assert stat.S_IMODE(written.host_key.stat().st_mode) == 0o600
    assert written.host_fingerprint == ssh_keygen_fingerprint(written.host_key.with_name(desk.HOST_KEY + ".pub"))
    # Written again: the host key is kept (desks have recorded its fingerprint).
    again = desk.write_sshd_config(out, home=home, port=22022, user=user)
    assert again.host_fingerprint == written.host_fingerprint and not again.created_host_key
    # /tmp is world-writable: sshd's StrictModes would refuse the keys file, and we say so.
    assert any("modifiable par d'autres" in warning for warning in written.warnings_fr)


def test_sshd_config_refuses_bad_input(tmp_path: Path) -> None:
    with pytest.raises(DeskError, match="no system user"):
        desk.write_sshd_config(tmp_path, home=tmp_path, port=2222, user="personne-inconnue")
    with pytest.raises(DeskError, match="out of range"):
        desk.write_sshd_config(tmp_path, home=tmp_path, port=70000, user="root")
    with pytest.raises(DeskError, match="space or quote"):
        desk.sshd_fragment_text(user="root", home=Path("/var/lib/my home"))


def test_strict_modes_problem(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    assert desk.strict_modes_problem(Path("/"), os.getuid()) is None
    problem = desk.strict_modes_problem(private, os.getuid())
    if Path("/tmp") in tmp_path.parents and stat.S_IMODE(Path("/tmp").stat().st_mode) & 0o002:
        assert problem is not None and "/tmp" in problem
    shared = private / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    assert str(shared) in (desk.strict_modes_problem(shared, os.getuid()) or "")
