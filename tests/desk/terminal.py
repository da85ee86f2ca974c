"""A terminal a person would use, driven by the tests: tmux on its own server socket, keys in, screen out."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import time

import pytest

_counter = itertools.count()


class Terminal:
    """One tmux server per test (never the user's), one window per desk."""

    def __init__(self) -> None:
        if shutil.which("tmux") is None:
            pytest.skip("tmux not installed (.ci/run installs it)")
        self.socket = f"continuity-test-{os.getpid()}-{next(_counter)}"

    def _tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args], capture_output=True, text=True,
                              check=check, timeout=20)  # fmt: skip

    def open(self, name: str, command: list[str], *, width: int = 100, height: int = 30) -> None:
        line = " ".join(_quote(part) for part in command)
        # remain-on-exit: the last screen (an error message) stays readable after the program ends.
        self._tmux("new-session", "-d", "-s", name, "-x", str(width), "-y", str(height), line)
        self._tmux("set-option", "-t", name, "remain-on-exit", "on")

    def type(self, name: str, text: str) -> None:
        self._tmux("send-keys", "-t", name, "-l", text)

    def press(self, name: str, *keys: str) -> None:
        for key in keys:
            self._tmux("send-keys", "-t", name, key)
            time.sleep(0.15)

    def screen(self, name: str) -> str:
        return self._tmux("capture-pane", "-p", "-t", name).stdout

    def wait_for(self, name: str, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen(name)
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} not on the screen of {name} after {timeout} s:\n{screen}")

    def pane_dead(self, name: str) -> bool:
        result = self._tmux("display-message", "-p", "-t", name, "#{pane_dead}", check=False)
        return result.stdout.strip() == "1"

    def pane_pid(self, name: str) -> int:
        return int(self._tmux("display-message", "-p", "-t", name, "#{pane_pid}").stdout.strip())

    def close(self) -> None:
        self._tmux("kill-server", check=False)


def _quote(part: str) -> str:
    import shlex

    return shlex.quote(part)
