"""Fixtures that run the real scripts as child processes on loopback ports."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.procs import ANY_PORT, BOUND, Proc


@pytest.fixture
def spawn() -> Iterator:
    """Return a function that starts a script; every process dies with the test."""
    procs: list[Proc] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Proc:
        proc = Proc(list(args), env)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()


@pytest.fixture
def aggregator(spawn):
    """Return a function that starts an aggregator on free ports.

    It returns the process and the two endpoints it bound.
    """

    def start(*extra: str) -> tuple[Proc, str, str]:
        proc = spawn("aggregator.py", "--pub", ANY_PORT, "--rep", ANY_PORT, *extra)
        match = proc.wait_for(BOUND.pattern)
        return proc, match[1], match[2]

    return start


@pytest.fixture
def free_endpoint():
    """Return a function giving a tcp endpoint whose port was free a moment ago."""

    def pick() -> str:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return f"tcp://127.0.0.1:{probe.getsockname()[1]}"

    return pick
