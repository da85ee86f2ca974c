"""Desks benchmark: memory of the appliance with five desks unlocked at once over SSH, 100,000 patients.

Run: `.venv/bin/python -m bench.desks [--patients 100000] [--desks 5] [--write-doc]` (as the user
that owns the appliance home; root runs sshd with privilege separation, as on an appliance).

Everything is real: an appliance home with a 100,000-patient snapshot (published, sealed, pulled;
argon2id MODERATE keyslots, one staff member per desk), the generated sshd configuration run by
`/usr/sbin/sshd`, and one tmux window per desk running `ssh -t` with that desk's key, so each desk is a
`continuity tui --desk` process on the appliance, as a doctor's shortcut opens it.

Memory is sampled every 50 ms from /proc for every process under the sshd listener (the per-connection
sshd processes and the interfaces): PSS (proportional set size: shared pages such as the Python
binary and libraries split among the processes that map them) summed over all of them is what the
appliance spends; RSS and VmHWM (peak RSS) per interface are what one session costs. Phases:

1. baseline: one desk alone unlocks, searches, opens a patient, prints its summary (same run);
2. five desks connected, then all five unlock at the same moment (the worst case: five argon2id
   working areas of 256 MiB at once), then each searches, opens and prints;
3. steady: 15 s later (the interface collects garbage while idle);
4. staggered: all lock, then unlock one after another.

`--write-doc` replaces the "Desks: five sessions at once" section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import getpass
import os
import platform
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from continuity import demo, desk, keys

ROOT = Path(__file__).resolve().parent.parent
SSHD = desk.SSHD_BINARY
PASSPHRASE = "phrase de passe du banc d'essai"
SEARCHES = ["rousseau 14/04/1976", "n'diaye 23/09/1981", "robert 08/02/1961", "kaya 19/08/1955", "laurent 19/10/1947"]
MiB = 1024 * 1024


# --- the appliance -----------------------------------------------------------------------------------


def prepare_home(cache: Path, patients: int, desks: int) -> tuple[Path, dict[str, str]]:
    """The 100,000-patient demo home (kept between runs) and one staff member per desk: login -> passphrase."""
    home = cache / f"home-{patients}"
    ready = home / ".bench-ready"
    users = {demo.DEMO_USER: demo.DEMO_PASSPHRASE, demo.DEMO_DOCTOR: demo.DEMO_DOCTOR_PASSPHRASE}
    users.update({f"dr.banc-{n}": PASSPHRASE for n in range(3, desks + 1)})
    if not ready.exists():
        print(f"building the {patients}-patient appliance home (synthesise, publish, pull)…", flush=True)
        os.environ.pop(keys.WEAK_KDF_ENV, None)
        demo.prepare(home, patients=patients, today=dt.date.today())
        secrets = keys.open_keyslot(home, demo.DEMO_DOCTOR, demo.DEMO_DOCTOR_PASSPHRASE)
        for login, passphrase in users.items():
            if login not in keys.list_staff(home):
                keys.add_staff(home, secrets, login, passphrase)
        ready.write_text("ok\n")
    for stale in home.glob("tui-last-user*"):
        stale.unlink()  # every desk starts on the name list
    return home, dict(list(users.items())[:desks])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Rig:
    home: Path
    work: Path
    port: int
    sshd: subprocess.Popen[bytes]
    users: dict[str, str]  # desk name -> login
    passphrases: dict[str, str]
    keys: dict[str, Path] = field(default_factory=dict)
    socket_name: str = f"continuity-bench-{os.getpid()}"

    def tmux(self, *args: str) -> str:
        result = subprocess.run(["tmux", "-L", self.socket_name, "-f", "/dev/null", *args], capture_output=True,
                                text=True, timeout=20, check=False)  # fmt: skip
        return result.stdout

    def screen(self, name: str) -> str:
        return self.tmux("capture-pane", "-p", "-t", name)

    def wait_for(self, name: str, text: str, timeout: float = 180) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if text in self.screen(name):
                return time.monotonic() - start
            time.sleep(0.05)
        raise SystemExit(f"{name}: {text!r} never appeared:\n{self.screen(name)}")

    def press(self, name: str, *keys_: str) -> None:
        for key in keys_:
            self.tmux("send-keys", "-t", name, key)
            time.sleep(0.15)

    def connect(self, name: str) -> None:
        options = ["-F", "/dev/null", "-p", str(self.port), "-i", str(self.keys[name]), "-o", "IdentitiesOnly=yes",
                   "-o", "IdentityAgent=none", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                   "-o", f"UserKnownHostsFile={self.work / 'known_hosts'}", "-o", "LogLevel=ERROR"]  # fmt: skip
        command = " ".join(["ssh", *options, "-t", f"{getpass.getuser()}@127.0.0.1"])
        self.tmux("new-session", "-d", "-s", name, "-x", "100", "-y", "30", command)
        self.wait_for(name, "Votre nom", timeout=60)

    def type_passphrase(self, name: str, *, choose: bool = True) -> None:
        """Choose the desk's staff member in the list (unless preselected) and type the passphrase, no Enter."""
        login = self.users[name]
        if choose:
            position = sorted(self.passphrases).index(login) + 1
            self.press(name, "Enter")
            self.wait_for(name, login, timeout=30)
            self.press(name, *["Down"] * position, "Enter")
            time.sleep(0.5)
        passphrase = self.passphrases[login]
        self.tmux("send-keys", "-t", name, "-l", passphrase)
        self.wait_for(name, "•" * len(passphrase), timeout=30)

    def unlocked(self, name: str) -> float:
        return self.wait_for(name, f"poste : {name} — utilisateur", timeout=300)

    def work_at(self, name: str, search: str) -> None:
        self.tmux("send-keys", "-t", name, "-l", search)
        self.wait_for(name, "1 patient —", timeout=60)
        self.press(name, "Enter")
        self.wait_for(name, "Imprimer le résumé", timeout=60)
        self.press(name, "p")
        self.wait_for(name, "Imprim", timeout=120)  # printed, or "Impression impossible" without CUPS


@contextlib.contextmanager
def rig(home: Path, work: Path, users: dict[str, str], passphrases: dict[str, str]) -> Iterator[Rig]:
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    port = free_port()
    written = desk.write_sshd_config(work / "sshd", home=home, port=port, user=getpass.getuser(), listen=["127.0.0.1"])
    host = written.host_key.with_name(written.host_key.name + ".pub").read_text().split()
    (work / "known_hosts").write_text(f"[127.0.0.1]:{port} {host[0]} {host[1]}\n")
    registry = desk.DeskRegistry(home)
    desk_keys = {}
    for name in users:
        path = work / name
        if not path.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
        desk_keys[name] = path
        registry.add(name, desk.read_key_file(path.with_name(name + ".pub")), printer=os.environ.get("PRINTER"),
                     replace=True)  # fmt: skip
    log = (work / "sshd.log").open("wb")
    sshd = subprocess.Popen([SSHD, "-D", "-e", "-f", str(written.config)], stdout=log, stderr=log)
    for _ in range(100):
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            break
        time.sleep(0.1)
    running = Rig(home, work, port, sshd, users, passphrases, desk_keys)
    try:
        yield running
    finally:
        running.tmux("kill-server")
        sshd.terminate()
        sshd.wait(timeout=20)
        log.close()
        for name in users:
            with contextlib.suppress(desk.DeskError):
                registry.remove(name)


# --- memory ------------------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def descendants(pid: int) -> list[int]:
    todo, seen = [pid], []
    while todo:
        current = todo.pop()
        seen.append(current)
        todo += _children(current)
    return seen


def rollup(pid: int) -> dict[str, int]:
    """Rss, Pss, Private (USS) in bytes from smaps_rollup; {} if the process is gone."""
    values: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0].rstrip(":") in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
                values[parts[0].rstrip(":")] = int(parts[1]) * 1024
    if values:
        values["Private"] = values.get("Private_Clean", 0) + values.get("Private_Dirty", 0)
    return values


def command_line(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    return ""


def high_water(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


class Sampler:
    """Samples the PSS of every process under the sshd listener, labelled by the current phase."""

    def __init__(self, root: int, interval: float = 0.05) -> None:
        self.root = root
        self.interval = interval
        self.phase = "start"
        self.peaks: dict[str, int] = {}  # phase -> max total PSS
        self.last: dict[str, dict[str, Any]] = {}
        self.hwm: dict[int, tuple[str, int]] = {}  # pid -> (desk, VmHWM)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def snapshot(self) -> dict[str, Any]:
        total = {"Pss": 0, "Rss": 0, "Private": 0}
        interfaces: dict[str, dict[str, int]] = {}
        sshd_pss = 0
        for pid in descendants(self.root):
            values = rollup(pid)
            if not values:
                continue
            for key in total:
                total[key] += values.get(key, 0)
            line = command_line(pid)
            match = re.search(r"--desk (\S+)", line)
            if match and "python" in line:
                interfaces[match.group(1)] = values
                self.hwm[pid] = (match.group(1), max(high_water(pid), self.hwm.get(pid, ("", 0))[1]))
            else:
                sshd_pss += values.get("Pss", 0)
        return {"total": total, "interfaces": interfaces, "sshd_pss": sshd_pss}

    def _run(self) -> None:
        while not self._stop.is_set():
            snap = self.snapshot()
            pss = snap["total"]["Pss"]
            self.peaks[self.phase] = max(self.peaks.get(self.phase, 0), pss)
            self.last[self.phase] = snap
            time.sleep(self.interval)


# --- the run -----------------------------------------------------------------------------------------


def run(patients: int, desks: int, cache: Path) -> dict[str, Any]:
    home, passphrases = prepare_home(cache, patients, desks)
    names = [f"salle-{n}" for n in range(1, desks + 1)]
    users = dict(zip(names, passphrases, strict=True))
    work = cache / "rig"
    work.mkdir(exist_ok=True)
    result: dict[str, Any] = {"patients": patients, "desks": desks}
    with rig(home, work, users, passphrases) as bench, Sampler(bench.sshd.pid) as sampler:
        first = names[0]
        sampler.phase = "baseline"
        bench.connect(first)
        bench.type_passphrase(first)
        bench.press(first, "Enter")
        result["baseline_unlock_s"] = bench.unlocked(first)
        bench.work_at(first, SEARCHES[0])
        time.sleep(15)
        sampler.phase = "baseline-steady"
        time.sleep(2)
        result["baseline"] = sampler.snapshot()
        result["baseline_hwm"] = max(v for _, v in sampler.hwm.values())
        bench.press(first, "C-q")
        bench.wait_for(first, "Quitter Continuity ?")  # quitting asks first
        bench.press(first, "o")
        time.sleep(3)
        sampler.hwm.clear()

        sampler.phase = "connected"
        for name in names:
            bench.connect(name)
            bench.type_passphrase(name)
        time.sleep(2)
        result["connected"] = sampler.snapshot()
        sampler.phase = "together"
        for name in names:  # Enter in every window within a fraction of a second
            bench.tmux("send-keys", "-t", name, "Enter")
        start = time.monotonic()
        unlock_times = {}
        for name in names:
            bench.unlocked(name)
            unlock_times[name] = time.monotonic() - start
        result["together_unlock_s"] = unlock_times
        sampler.phase = "working"
        threads = [threading.Thread(target=bench.work_at, args=(name, SEARCHES[i % len(SEARCHES)]))
                   for i, name in enumerate(names)]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        time.sleep(15)
        sampler.phase = "steady"
        time.sleep(2)
        result["steady"] = sampler.snapshot()
        result["together_hwm"] = {name: hwm for name, hwm in sampler.hwm.values()}

        sampler.phase = "locked"
        for name in names:
            bench.press(name, "C-l")
        time.sleep(5)
        result["locked"] = sampler.snapshot()
        sampler.phase = "staggered"
        staggered = {}
        for name in names:
            bench.wait_for(name, "Votre phrase de passe", timeout=30)
            bench.type_passphrase(name, choose=False)  # the desk preselects who unlocked there last
            bench.press(name, "Enter")
            staggered[name] = bench.unlocked(name)
        time.sleep(2)
        result["staggered_unlock_s"] = staggered
        result["peaks"] = dict(sampler.peaks)
    result["load"] = os.getloadavg()[0]
    return result


def mib(value: float) -> str:
    return f"{value / MiB:,.0f} MiB"


def markdown(result: dict[str, Any]) -> str:
    peaks = result["peaks"]
    base = result["baseline"]
    steady = result["steady"]
    desks = result["desks"]
    alone = next(iter(base["interfaces"].values()))
    per_steady = [v["Pss"] for v in steady["interfaces"].values()]
    per_rss = [v["Rss"] for v in steady["interfaces"].values()]
    hwm = list(result["together_hwm"].values())
    together = result["together_unlock_s"]
    staggered = result["staggered_unlock_s"]
    lines = [
        f"Measured by `bench/desks.py` on {dt.date.today().isoformat()} ({platform.machine()}, "
        f"{os.cpu_count()} CPU, Python {platform.python_version()}): {result['patients']:,} synthetic patients, "
        f"{desks} desks over a real sshd (generated configuration, one tmux window per desk running `ssh -t`), "
        f"argon2id MODERATE keyslots, one staff member per desk. 1-minute load average at the end: "
        f"{result['load']:.1f} (the 2 CPUs were shared with other work when above 2: unlock times are "
        "pessimistic; memory is not affected). Re-run: `.venv/bin/python -m bench.desks --write-doc`.",
        "",
        "| what | one desk alone (baseline, same run) | five desks |",
        "|---|---:|---:|",
        f"| peak RSS of one interface process (VmHWM: argon2id's 256 MiB included) | {mib(result['baseline_hwm'])} | "
        f"{mib(min(hwm))} – {mib(max(hwm))} |",
        f"| one unlocked interface after work (RSS / PSS) | {mib(alone['Rss'])} / {mib(alone['Pss'])} | "
        f"{mib(min(per_rss))}–{mib(max(per_rss))} / {mib(min(per_steady))}–{mib(max(per_steady))} |",
        f"| **appliance peak** (PSS of every sshd and interface process, sampled every 50 ms) | "
        f"{mib(peaks.get('baseline', 0))} | **{mib(peaks.get('together', 0))}** (unlocking together); "
        f"{mib(peaks.get('staggered', 0))} (one after another) |",
        f"| appliance after work, all unlocked (PSS) | {mib(base['total']['Pss'])} | {mib(steady['total']['Pss'])} |",
        f"| appliance, five connected and locked (PSS) | | {mib(result['locked']['total']['Pss'])} |",
        f"| of which the sshd processes (PSS) | {mib(base['sshd_pss'])} | {mib(steady['sshd_pss'])} |",
        f"| unlock → search screen | {result['baseline_unlock_s']:.1f} s | {min(together.values()):.1f}–"
        f"{max(together.values()):.1f} s together; {min(staggered.values()):.1f}–{max(staggered.values()):.1f} s "
        "one after another |",
    ]
    return "\n".join(lines)


def write_doc(text: str) -> None:
    """Replace the measured part of the section (up to its first ### heading: the analysis stays)."""
    path = ROOT / "docs" / "performance.md"
    doc = path.read_text(encoding="utf-8")
    title = "## Desks: five sessions at once"
    body = text + "\n"
    pattern = re.compile(r"(## Desks: five sessions at once\n\n)(.*?)(?=\n### |\n## |\Z)", re.S)
    if pattern.search(doc):
        doc = pattern.sub(lambda m: m.group(1) + body, doc, count=1)
    else:
        doc = doc.rstrip("\n") + f"\n\n{title}\n\n{body}"
    path.write_text(doc, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--desks", type=int, default=5)
    parser.add_argument("--cache", type=Path, default=ROOT / "bench" / "results" / "desks-cache")
    parser.add_argument("--write-doc", action="store_true")
    args = parser.parse_args()
    for tool in ("tmux", "ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed (apt-get install openssh-client tmux)")
    if not Path(SSHD).is_file():
        raise SystemExit(f"{SSHD} is needed (apt-get install openssh-server)")
    args.cache.mkdir(parents=True, exist_ok=True)
    problem = desk.strict_modes_problem(args.cache, os.getuid())
    if problem:
        raise SystemExit(f"sshd's StrictModes would refuse keys under {args.cache}: {problem}; use --cache")
    result = run(args.patients, args.desks, args.cache)
    print(result)
    text = markdown(result)
    print(text)
    if args.write_doc:
        write_doc(text)


if __name__ == "__main__":
    main()
