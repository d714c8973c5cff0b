"""Command-line plumbing shared by the scripts: options, logging, signals, errors."""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import socket
import stat
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import NoReturn

import zmq
from rich.console import Console
from rich.live import Live
from rich.logging import RichHandler

__all__ = [
    "DEFAULT_PUB",
    "DEFAULT_REP",
    "Parser",
    "SetupError",
    "Stopped",
    "add_endpoint_options",
    "add_round_options",
    "add_verbosity_options",
    "endpoint",
    "logs_above",
    "make_console",
    "open_socket",
    "positive_float",
    "positive_int",
    "report_error",
    "setup_logging",
    "stop_on_signals",
]

DEFAULT_PUB = "tcp://127.0.0.1:5555"
DEFAULT_REP = "tcp://127.0.0.1:5556"
PUB_ENV = "CARRENTAL_PUB"
REP_ENV = "CARRENTAL_REP"

# When output goes to a file or a pipe there is no terminal width to respect;
# a wide virtual one keeps table rows and log lines whole.
PIPE_WIDTH = 160

_ENDPOINT = re.compile(
    r"^(tcp://(\[[0-9a-fA-F:.]+\]|[^\s:/\[\]]+):(\d+|\*)|ipc://\S+)$"
)


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are a single line on stderr."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class SetupError(Exception):
    """A start-up failure the user can fix: bad endpoint, address in use."""


class Stopped(BaseException):
    """Raised in the main thread when SIGINT or SIGTERM arrives.

    A BaseException, like KeyboardInterrupt, so that no ``except Exception``
    (logging's handlers have one) can swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def stop_on_signals() -> None:
    """Turn SIGINT and SIGTERM into ``Stopped`` so every loop unwinds cleanly.

    Only the first signal raises; later ones are ignored, so a second Ctrl+C
    cannot interrupt the (bounded) clean-up.
    """

    def _raise(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Stopped(signum)

    signal.signal(signal.SIGINT, _raise)
    signal.signal(signal.SIGTERM, _raise)


def endpoint(text: str) -> str:
    """Return ``text`` if it is a tcp:// or ipc:// endpoint; for argparse."""
    match = _ENDPOINT.match(text)
    if not match:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an endpoint like tcp://127.0.0.1:5555"
        )
    port = match[3]
    if port is not None and port != "*" and not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} has a port outside 1-65535")
    return text


def positive_int(text: str) -> int:
    """Return ``text`` as a whole number above zero; for argparse."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number above 0")
    return value


def positive_float(text: str) -> float:
    """Return ``text`` as a finite number of seconds above zero; for argparse."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0")
    return value


def add_endpoint_options(parser: argparse.ArgumentParser, verb: str) -> None:
    """Add --pub and --rep, defaulting to CARRENTAL_PUB and CARRENTAL_REP."""
    for flag, env, default, socket_name in (
        ("--pub", PUB_ENV, DEFAULT_PUB, "PUB (broadcast)"),
        ("--rep", REP_ENV, DEFAULT_REP, "REP (reply)"),
    ):
        parser.add_argument(
            flag,
            metavar="ENDPOINT",
            type=_endpoint_from(env),
            default=os.environ.get(env, default),
            help=f"{socket_name} endpoint to {verb} (default: ${env} or {default})",
        )


def _endpoint_from(env: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        try:
            return endpoint(text)
        except argparse.ArgumentTypeError as exc:
            if os.environ.get(env) == text:
                raise argparse.ArgumentTypeError(f"{exc} (from ${env})") from None
            raise

    return check


def add_round_options(
    parser: argparse.ArgumentParser, *, expect: int, timeout_s: float
) -> None:
    """Add --expect and --timeout, the two bounds of a round."""
    parser.add_argument(
        "--expect",
        type=positive_int,
        default=expect,
        metavar="N",
        help=f"rentals the round waits for (default: {expect})",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=timeout_s,
        metavar="SECONDS",
        help=f"deadline of the round (default: {timeout_s:g})",
    )


def add_verbosity_options(parser: argparse.ArgumentParser) -> None:
    """Add -v/--verbose and -q/--quiet, each usable more than once."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (DEBUG)"
    )
    group.add_argument(
        "-q", "--quiet", action="count", default=0, help="log less (warnings only)"
    )


def make_console(*, stderr: bool = False) -> Console:
    """Return a rich console, wide enough not to cut lines when not a terminal."""
    console = Console(stderr=stderr)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(stderr=stderr, width=PIPE_WIDTH)
    return console


def setup_logging(verbose: int, quiet: int) -> Console:
    """Send log records through RichHandler to stderr; return that console.

    The level starts at INFO and moves by 10 per -q or -v.
    """
    console = make_console(stderr=True)
    level = min(max(logging.INFO + 10 * (quiet - verbose), logging.DEBUG), 50)
    handler = RichHandler(
        console=console,
        show_path=False,
        markup=False,
        rich_tracebacks=True,
    )
    logging.basicConfig(level=level, format="%(message)s", handlers=[handler])
    return console


@contextmanager
def logs_above(live: Live | None) -> Iterator[None]:
    """While ``live`` runs, print log records above it instead of through it.

    Records written straight to the terminal would tear the live display.
    Logs that go to a file or a pipe are left where they go.
    """
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, RichHandler)]
    if live is None or not all(h.console.is_terminal for h in handlers):
        yield
        return
    saved = [h.console for h in handlers]
    for handler in handlers:
        handler.console = live.console
    try:
        yield
    finally:
        for handler, console in zip(handlers, saved, strict=True):
            handler.console = console


def report_error(message: str, *, prog: str | None = None) -> None:
    """Write one line to stderr, prefixed with the program's name."""
    prog = prog or os.path.basename(sys.argv[0]) or "carrental"
    print(f"{prog}: error: {message}", file=sys.stderr)


def open_socket(
    ctx: zmq.Context, kind: int, address: str, *, bind: bool, **options: object
) -> zmq.Socket:
    """Create a socket, set its options, then bind or connect it to ``address``.

    Options take effect only when set before bind/connect, hence this helper.
    Raise SetupError naming the endpoint when ZeroMQ refuses it.
    """
    if bind and address.startswith("ipc://"):
        # libzmq unlinks whatever is at the path: a running peer's socket,
        # or a file. Neither is ours to take.
        path = address[6:]
        taken = ""
        if os.path.exists(path) and not stat.S_ISSOCK(os.stat(path).st_mode):
            taken = "a file that is not a socket is there"
        elif _ipc_in_use(path):
            taken = "another process listens there"
        if taken:
            raise SetupError(f"cannot bind to {address!r}: {taken}")
    sock = ctx.socket(kind)
    try:
        for name, value in options.items():
            setattr(sock, name, value)
    except zmq.ZMQError as exc:
        sock.close()
        raise SetupError(f"cannot set {name} on a socket: {exc.strerror}") from exc
    # Linger 0: unsent messages are dropped at close, so exiting never hangs.
    sock.linger = 0
    # IPv6 must be switched on before bind/connect for a [::1]-style address.
    sock.ipv6 = "[" in address
    try:
        if bind:
            sock.bind(address)
        else:
            sock.connect(address)
    except zmq.ZMQError as exc:
        sock.close()
        verb = "bind" if bind else "connect"
        kind_name = zmq.SocketType(kind).name
        hint = ""
        if not bind and "*" in address:
            hint = " ('*' is for binding: connect to the aggregator's host and port)"
        elif exc.errno == zmq.EADDRINUSE:
            hint = " (is another aggregator running? choose a port with --pub/--rep)"
        reason = zmq.strerror(exc.errno or 0)
        raise SetupError(
            f"cannot {verb} {kind_name} to {address!r}: {reason}{hint}"
        ) from exc
    return sock


def _ipc_in_use(path: str) -> bool:
    """Return True when a process accepts connections on the Unix socket ``path``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except OSError:
            return False
    return True
