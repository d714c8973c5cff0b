"""Run the aggregator and both rental services from one terminal."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from rich.console import Console
from rich.text import Text

from common.cli import (
    DEFAULT_PUB,
    DEFAULT_REP,
    Parser,
    Stopped,
    add_verbosity_options,
    make_console,
    positive_float,
    report_error,
    stop_on_signals,
)

__all__ = ["demo_main"]

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
DEFAULT_TIMEOUT_S = 30.0
# The rentals start this long after the aggregator, to show that a late
# joiner still hears the round (the aggregator re-broadcasts QTY).
RENTAL_DELAY_S = 1.0
READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 3.0
PREFIX_WIDTH = 12
READY_LINE = re.compile(r"bound PUB=")


class Child:
    """A script run as a child process, its stderr lines shown with a prefix."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        console: Console,
        style: str,
        *,
        ready: re.Pattern[str] | None = None,
    ) -> None:
        self.name = name
        # Set when the ready line is seen (bound = True) or the child ends.
        self.ready = threading.Event()
        self.bound = False
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["COLUMNS"] = str(max(60, console.width - PREFIX_WIDTH - 3))
        self.proc = subprocess.Popen(
            [sys.executable, *argv],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
        self._reader = threading.Thread(
            target=self._relay, args=(console, style, ready), daemon=True
        )
        self._reader.start()

    def _relay(
        self, console: Console, style: str, ready: re.Pattern[str] | None
    ) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            prefix = Text(f"{self.name:<{PREFIX_WIDTH}} | ", style=style)
            console.print(prefix + Text(line.rstrip()), highlight=False)
            if ready is not None and ready.search(line):
                self.bound = True
                self.ready.set()
        # End of output: the child is exiting, so nobody should wait for it.
        self.ready.set()

    def stop(self) -> None:
        """Ask the child to stop with SIGINT; kill it if it does not in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(STOP_TIMEOUT_S)


def free_endpoint(default: str) -> str:
    """Return ``default`` if its port is free on the loopback, else a free one."""
    port = int(default.rsplit(":", 1)[1])
    for candidate in (port, 0):
        with socket.socket() as probe:
            try:
                probe.bind((HOST, candidate))
            except OSError:
                continue
            return f"tcp://{HOST}:{probe.getsockname()[1]}"
    raise OSError("no free port on the loopback")


def demo_main(argv: list[str] | None = None) -> int:
    """Run the three processes; return the aggregator's exit code."""
    parser = Parser(
        prog="demo.py",
        description="Start the aggregator, then both rental services a moment "
        "later, and show the consolidated table.",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"deadline of the round (default: {DEFAULT_TIMEOUT_S:g})",
    )
    add_verbosity_options(parser)
    args = parser.parse_args(argv)
    stop_on_signals()

    console = make_console(stderr=True)
    pub, rep = free_endpoint(DEFAULT_PUB), free_endpoint(DEFAULT_REP)
    flags = ["--pub", pub, "--rep", rep]
    flags += ["-v"] * args.verbose + ["-q"] * args.quiet
    children: list[Child] = []
    try:
        aggregator = Child(
            "aggregator",
            ["aggregator.py", *flags, "--timeout", f"{args.timeout:g}"],
            console,
            "bold cyan",
            ready=READY_LINE,
        )
        children.append(aggregator)
        if not aggregator.ready.wait(READY_TIMEOUT_S):
            report_error(f"the aggregator did not bind within {READY_TIMEOUT_S:g} s")
            return 1
        if aggregator.proc.poll() is not None or not aggregator.bound:
            return aggregator.proc.wait(STOP_TIMEOUT_S)
        console.print(
            f"demo: aggregator bound; rentals start in {RENTAL_DELAY_S:g} s",
            highlight=False,
        )
        try:
            # The pause before the rentals start, cut short if the aggregator fails.
            return aggregator.proc.wait(RENTAL_DELAY_S)
        except subprocess.TimeoutExpired:
            pass
        for name, script, style in (
            ("locadora A", "rental_service.py", "bold magenta"),
            ("locadora B", "rental_service2.py", "bold yellow"),
        ):
            children.append(Child(name, [script, *flags], console, style))
        return aggregator.proc.wait(args.timeout + READY_TIMEOUT_S)
    except Stopped as stop:
        return 128 + stop.signum
    except subprocess.TimeoutExpired:
        report_error("the aggregator did not finish its round in time")
        return 1
    finally:
        # A second Ctrl+C must not interrupt the clean-up, which is bounded.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for child in reversed(children):
            child.stop()
