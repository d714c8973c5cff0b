"""A real script run as a child process, its output read line by line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Bind to any free port; the aggregator logs the port it got.
ANY_PORT = "tcp://127.0.0.1:*"
BOUND = re.compile(r"bound PUB=(\S+) REP=(\S+)")
EVENT_TIMEOUT_S = 15.0
RENTAL_SCRIPTS = ["rental_service.py", "rental_service2.py"]


class Proc:
    """A script running as a child process, its output collected line by line."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.args = args
        full_env = dict(os.environ, COLUMNS="250", PYTHONUNBUFFERED="1")
        full_env.pop("CARRENTAL_PUB", None)
        full_env.pop("CARRENTAL_REP", None)
        full_env.update(env or {})
        self.popen = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            # A group of its own, so that clean-up reaches its children too.
            start_new_session=True,
        )
        self._lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(name,), daemon=True)
            for name in self._lines
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, name: str) -> None:
        for line in getattr(self.popen, name):
            with self._changed:
                self._lines[name].append(line.rstrip())
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def stdout(self) -> str:
        """Return everything the process wrote on stdout so far."""
        with self._changed:
            return "\n".join(self._lines["stdout"])

    @property
    def stderr(self) -> str:
        """Return everything the process wrote on stderr so far."""
        with self._changed:
            return "\n".join(self._lines["stderr"])

    def wait_for(
        self,
        pattern: str,
        *,
        stream: str = "stderr",
        count: int = 1,
        timeout: float = EVENT_TIMEOUT_S,
    ) -> re.Match[str]:
        """Return the ``count``-th match of ``pattern`` in a line of output."""
        regex = re.compile(pattern)

        def found() -> list[re.Match[str]]:
            lines = self._lines[stream]
            return [m for m in map(regex.search, lines) if m is not None]

        with self._changed:
            ok = self._changed.wait_for(
                lambda: len(found()) >= count or not self._alive(), timeout
            )
            matches = found()
        if len(matches) < count:
            state = "timed out" if not ok else "the process ended"
            raise AssertionError(
                f"{state} waiting for {pattern!r} in {self.args[0]}'s {stream}:\n"
                f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"
            )
        return matches[count - 1]

    def matches(self, pattern: str, *, stream: str = "stderr") -> list[re.Match[str]]:
        """Return every match of ``pattern`` in the lines read so far."""
        regex = re.compile(pattern)
        with self._changed:
            lines = list(self._lines[stream])
        return [m for m in map(regex.search, lines) if m is not None]

    def _alive(self) -> bool:
        return self.popen.poll() is None or any(r.is_alive() for r in self._readers)

    def wait(self, timeout: float = EVENT_TIMEOUT_S) -> int:
        """Wait for the process to exit and its output to be read; return its code."""
        code = self.popen.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        return code

    def signal(self, signum: int = signal.SIGINT) -> None:
        """Send a signal to the process."""
        self.popen.send_signal(signum)

    def kill(self) -> None:
        """Kill the process and anything it started, and reap it."""
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait()


def start_rental(spawn, script: str, pub: str, rep: str, *extra: str) -> Proc:
    """Start one rental service script connected to ``pub`` and ``rep``."""
    return spawn(script, "--pub", pub, "--rep", rep, *extra)


def start_rentals(spawn, pub: str, rep: str, *extra: str) -> list[Proc]:
    """Start both rental services connected to ``pub`` and ``rep``."""
    return [start_rental(spawn, script, pub, rep, *extra) for script in RENTAL_SCRIPTS]
