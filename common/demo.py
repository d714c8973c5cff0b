"""Run the aggregator and both rental services from one terminal."""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import zmq
from rich.console import Console
from rich.text import Text

from common.cli import (
    Parser,
    Stopped,
    add_endpoint_options,
    add_round_options,
    add_verbosity_options,
    make_console,
    report_error,
    stop_on_signals,
)
from common.keys import create_keys

__all__ = ["demo_main"]

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TIMEOUT_S = 30.0
# The rentals start this long after the aggregator, to show that a late
# joiner still hears the round (the aggregator re-broadcasts QTY).
RENTAL_DELAY_S = 1.0
READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 3.0
PREFIX_WIDTH = 12
BOUND_LINE = re.compile(r"bound PUB=(\S+) REP=(\S+)")
RENTALS = (
    ("locadora A", "rental_service.py", "bold magenta"),
    ("locadora B", "rental_service2.py", "bold yellow"),
)


class Child:
    """A script run as a child process, its stderr lines shown with a prefix."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        console: Console,
        style: str,
        family: list[Child],
    ) -> None:
        self.name = name
        # The aggregator's "bound" line, and an event set when it is seen or
        # when the child's output ends, whichever comes first.
        self.bound: re.Match[str] | None = None
        self.bound_or_ended = threading.Event()
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
        # On the list at once, so that a signal from here on still stops it.
        family.append(self)
        console.print(f"demo: started {name} (pid {self.proc.pid})", highlight=False)
        self._reader = threading.Thread(
            target=self._relay, args=(console, style), daemon=True
        )
        self._reader.start()

    def _relay(self, console: Console, style: str) -> None:
        assert self.proc.stderr is not None  # for the type checker: set by PIPE
        for line in self.proc.stderr:
            prefix = Text(f"{self.name:<{PREFIX_WIDTH}} | ", style=style)
            console.print(prefix + Text(line.rstrip()), highlight=False)
            if self.bound is None and (match := BOUND_LINE.search(line)):
                self.bound = match
                self.bound_or_ended.set()
        self.bound_or_ended.set()

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


def bindable(address: str) -> str:
    """Return ``address``, or the same host with any free port if its port is taken."""
    with zmq.Context() as ctx, ctx.socket(zmq.PUB) as probe:
        probe.linger = 0
        try:
            probe.bind(address)
        except zmq.ZMQError as exc:
            if exc.errno == zmq.EADDRINUSE and address.startswith("tcp://"):
                return address.rsplit(":", 1)[0] + ":*"
        # Any other problem is left for the aggregator to report.
    return address


def demo_main(argv: list[str] | None = None) -> int:
    """Run the three processes; return the aggregator's exit code."""
    parser = Parser(
        prog="demo.py",
        description="Start the aggregator, then both rental services a moment "
        "later, and show the consolidated table. Taken ports are replaced by "
        "free ones.",
    )
    add_endpoint_options(parser, "bind")
    # Above two rentals, the others are yours to start in other terminals.
    add_round_options(parser, expect=len(RENTALS), timeout_s=DEFAULT_TIMEOUT_S)
    parser.add_argument(
        "--secure",
        action="store_true",
        help="run encrypted with CurveZMQ, on throw-away keys in a temporary folder",
    )
    add_verbosity_options(parser)
    args = parser.parse_args(argv)
    stop_on_signals()
    with tempfile.TemporaryDirectory(prefix="carrental-keys-") as keys:
        return _run(args, Path(keys) if args.secure else None)


def _run(args: argparse.Namespace, keys: Path | None) -> int:
    """Run the aggregator, then the rentals; return the aggregator's exit code."""
    aggregator_flags: list[str] = []
    rental_flags: dict[str, list[str]] = {name: [] for name, _, _ in RENTALS}
    if keys is not None:
        key_names = {name: name.replace(" ", "_") for name in rental_flags}
        create_keys(keys, list(key_names.values()))
        aggregator_flags = ["--keys", str(keys)]
        for name, key_name in key_names.items():
            rental_flags[name] = [
                "--key",
                str(keys / f"{key_name}.key_secret"),
                "--server-key",
                str(keys / "aggregator.key"),
            ]

    console = make_console(stderr=True)
    verbosity = ["-v"] * args.verbose + ["-q"] * args.quiet
    children: list[Child] = []
    try:
        aggregator = Child(
            "aggregator",
            [
                "aggregator.py",
                "--timeout",
                f"{args.timeout:g}",
                *verbosity,
                *aggregator_flags,
                "--expect",
                str(args.expect),
                "--pub",
                bindable(args.pub),
                "--rep",
                bindable(args.rep),
            ],
            console,
            "bold cyan",
            children,
        )

        if not aggregator.bound_or_ended.wait(READY_TIMEOUT_S):
            report_error(f"the aggregator did not bind within {READY_TIMEOUT_S:g} s")
            return 1
        if aggregator.bound is None:
            return aggregator.proc.wait(STOP_TIMEOUT_S)
        pub, rep = aggregator.bound.groups()
        console.print(
            f"demo: rentals start in {RENTAL_DELAY_S:g} s, after the round began",
            highlight=False,
        )
        try:
            # The pause before the rentals start, cut short if the aggregator ends.
            return aggregator.proc.wait(RENTAL_DELAY_S)
        except subprocess.TimeoutExpired:
            pass
        for name, script, style in RENTALS:
            argv = [script, "--pub", pub, "--rep", rep, *verbosity]
            argv += rental_flags[name]
            Child(name, argv, console, style, children)
        return aggregator.proc.wait(args.timeout + READY_TIMEOUT_S)
    except Stopped as stop:
        return 128 + stop.signum
    except subprocess.TimeoutExpired:
        report_error("the aggregator did not finish its round in time")
        return 1
    finally:
        # Further signals must not cut the clean-up short; it is bounded.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for child in reversed(children):
            child.stop()
