"""Benchmark: the product's round against a bare-pyzmq round on the same bytes.

Run: poetry run python bench/round.py [--quick] [--json FILE] [--chart FILE]

Three measurements, each next to its floor:
1. round latency with the two built-in rentals connected (real rental
   processes) against a bare round: PUB broadcast, SUB, REQ reply with the
   same pickled bytes, REP ACK, plain ``pickle.loads`` (no restrictions);
2. scale: N rentals x M cars. The rentals are one separate process that
   multiplexes N REQ sockets and sends pre-pickled replies, for the product
   and the baseline alike, so both measure the aggregator's side;
3. time to table in the classroom flow: from the start of the last rental
   process to the aggregator's exit.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import pickle
import re
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path

import zmq
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common.cars import Car, available, utc_now  # noqa: E402
from common.fleet import FLEETS, load_fleet  # noqa: E402
from common.hub import Aggregator  # noqa: E402
from common.protocol import ACK, QTY, encode_reply  # noqa: E402

ANY_PORT = "tcp://127.0.0.1:*"
ROUND_TIMEOUT_S = 60.0
WARM_UP_ROUNDS = 3
BOUND = re.compile(r"bound PUB=(\S+) REP=(\S+)")


@dataclass
class Figures:
    """One measured point: the product and the floor, in milliseconds."""

    name: str
    rentals: int
    cars: int
    rounds: int
    median_ms: float
    p99_ms: float
    baseline_median_ms: float
    baseline_p99_ms: float
    peak_mib: float | None = None

    @property
    def ratio(self) -> float:
        return self.median_ms / self.baseline_median_ms

    @property
    def cars_per_s(self) -> float:
        return self.rentals * self.cars / (self.median_ms / 1000)


def fleet_payloads(rentals: int, cars: int) -> list[tuple[str, list[Car]]]:
    """Return ``rentals`` made-up fleets of ``cars`` available cars each."""
    return [
        (
            f"Bench {r:03d}",
            [
                Car(i, 2024, "Make", f"Model {i}", Decimal(1000 + (r * 7 + i) % 900))
                for i in range(cars)
            ],
        )
        for r in range(rentals)
    ]


def responders(pub: str, rep: str, rentals: int, cars: int) -> None:
    """Answer every QTY from ``rentals`` REQ sockets with pre-pickled fleets.

    Runs in a process of its own until it is terminated.
    """
    fleets = fleet_payloads(rentals, cars)
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.subscribe(QTY)
    sub.connect(pub)
    reqs = []
    for _ in fleets:
        req = ctx.socket(zmq.REQ)
        req.connect(rep)
        reqs.append(req)
    frames = [encode_reply("-", name, "Bench", "http://b", cs) for name, cs in fleets]
    poller = zmq.Poller()
    for req in reqs:
        poller.register(req, zmq.POLLIN)
    answered = None
    while True:
        message = sub.recv_multipart()
        while sub.poll(0):  # only the newest broadcast counts
            message = sub.recv_multipart()
        round_id = message[1]
        if round_id == answered:
            continue
        for req, reply in zip(reqs, frames, strict=True):
            reply[1] = round_id
            req.send_multipart(reply, copy=False)
        waiting = len(reqs)
        while waiting:
            for _sock, _ in poller.poll():
                _sock.recv_multipart()
                waiting -= 1
        answered = round_id


def bare_rounds(rentals: int, count: int, spawn_responders: Callable) -> list[float]:
    """Time ``count`` bare rounds: broadcast, receive, pickle.loads, ACK."""
    ctx = zmq.Context()
    pub, rep = ctx.socket(zmq.PUB), ctx.socket(zmq.REP)
    for sock in (pub, rep):
        sock.linger = 0
        sock.bind(ANY_PORT)
    proc = spawn_responders(pub.last_endpoint.decode(), rep.last_endpoint.decode())
    times = []
    try:
        for number in range(-WARM_UP_ROUNDS, count):
            round_id = f"bare-{number}".encode()
            started = time.perf_counter()
            pending = rentals
            next_broadcast = started
            while pending:
                if time.perf_counter() >= next_broadcast:  # slow joiners
                    pub.send_multipart([QTY, round_id])
                    next_broadcast = time.perf_counter() + 0.25
                if not rep.poll(250):
                    continue
                frames = rep.recv_multipart()
                pickle.loads(frames[-1])
                rep.send_multipart([ACK, frames[1]])
                if frames[1] == round_id:
                    pending -= 1
            if number >= 0:
                times.append((time.perf_counter() - started) * 1000)
    finally:
        stop(proc)
        ctx.destroy(linger=0)
    return times


def product_rounds(
    rentals: int, count: int, spawn_responders: Callable
) -> tuple[list[float], float]:
    """Time ``count`` rounds of the real Aggregator; return them and peak MiB."""
    with Aggregator(ANY_PORT, ANY_PORT) as hub:
        proc = spawn_responders(*hub.endpoints)
        try:
            for _ in range(WARM_UP_ROUNDS):
                must_finish(hub.run_round(rentals, ROUND_TIMEOUT_S))
            times = []
            for _ in range(count):
                result = hub.run_round(rentals, ROUND_TIMEOUT_S)
                must_finish(result)
                times.append(result.elapsed_ms)
            tracemalloc.start()
            must_finish(hub.run_round(rentals, ROUND_TIMEOUT_S))
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
        finally:
            stop(proc)
    return times, peak


def must_finish(result) -> None:
    if result.missing:
        raise SystemExit(f"bench: a round missed {result.missing} rentals")


def stop(proc) -> None:
    if isinstance(proc, subprocess.Popen):
        proc.terminate()
        proc.wait(5)
    elif isinstance(proc, list):
        for each in proc:
            stop(each)
    else:
        proc.terminate()
        proc.join(5)


def multiplexed(rentals: int, cars: int) -> Callable:
    """Return a starter of one responder process for ``rentals`` x ``cars``."""

    def start(pub: str, rep: str) -> multiprocessing.Process:
        proc = multiprocessing.Process(
            target=responders, args=(pub, rep, rentals, cars), daemon=True
        )
        proc.start()
        return proc

    return start


def real_rentals(pub: str, rep: str) -> list[subprocess.Popen]:
    """Start the two built-in rental services as processes."""
    return [
        subprocess.Popen(
            [sys.executable, str(ROOT / script), "--pub", pub, "--rep", rep, "-q"],
            stdin=subprocess.DEVNULL,
        )
        for script in ("rental_service.py", "rental_service2.py")
    ]


def built_in_bare(pub: str, rep: str) -> list[multiprocessing.Process]:
    """Start bare responders sending the two built-in fleets' exact bytes."""
    procs = []
    for fleet_file in ("locadora_a.json", "locadora_b.json"):
        rental = load_fleet(FLEETS / fleet_file, utc_now())
        cars = available(rental.cars, utc_now())
        proc = multiprocessing.Process(
            target=_one_responder, args=(pub, rep, rental.name, cars), daemon=True
        )
        proc.start()
        procs.append(proc)
    return procs


def _one_responder(pub: str, rep: str, name: str, cars: list[Car]) -> None:
    ctx = zmq.Context()
    sub, req = ctx.socket(zmq.SUB), ctx.socket(zmq.REQ)
    sub.subscribe(QTY)
    sub.connect(pub)
    req.connect(rep)
    reply = encode_reply("-", name, "Bench", "http://b", cars)
    answered = None
    while True:
        round_id = sub.recv_multipart()[1]
        if round_id == answered:
            continue
        reply[1] = round_id
        req.send_multipart(reply)
        req.recv_multipart()
        answered = round_id


def measure(name: str, rentals: int, cars: int, count: int, starters) -> Figures:
    product_starter, baseline_starter = starters
    times, peak = product_rounds(rentals, count, product_starter)
    floor = bare_rounds(rentals, count, baseline_starter)
    return Figures(
        name=name,
        rentals=rentals,
        cars=cars,
        rounds=count,
        median_ms=statistics.median(times),
        p99_ms=percentile(times, 99),
        baseline_median_ms=statistics.median(floor),
        baseline_p99_ms=percentile(floor, 99),
        peak_mib=peak,
    )


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def time_to_table(runs: int) -> list[float]:
    """Return, per run, ms from the last rental's start to the aggregator's exit."""
    figures = []
    for _ in range(runs):
        agg = subprocess.Popen(
            [sys.executable, str(ROOT / "aggregator.py"), "--pub", ANY_PORT,
             "--rep", ANY_PORT, "--json", "--timeout", "30"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert agg.stderr is not None
        for line in agg.stderr:
            if match := BOUND.search(line):
                break
        pub, rep = match.groups()
        first = subprocess.Popen(
            [sys.executable, str(ROOT / "rental_service.py"), "--pub", pub,
             "--rep", rep, "--once", "-q"]
        )  # fmt: skip
        started = time.perf_counter()
        last = subprocess.Popen(
            [sys.executable, str(ROOT / "rental_service2.py"), "--pub", pub,
             "--rep", rep, "--once", "-q"]
        )  # fmt: skip
        code = agg.wait(60)
        figures.append((time.perf_counter() - started) * 1000)
        for proc in (first, last):
            proc.wait(10)
        if code != 0:
            raise SystemExit(f"bench: the aggregator exited {code}")
    return figures


def chart(points: list[Figures], path: Path) -> bool:
    """Draw round time against rentals x cars; return False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ordered = sorted(points, key=lambda p: (p.rentals * p.cars, p.rentals))
    xs = [p.rentals * p.cars for p in ordered]
    for label, key, style in (
        ("product", "median_ms", "o-"),
        ("bare pyzmq", "baseline_median_ms", "s--"),
    ):
        ax.loglog(xs, [getattr(p, key) for p in ordered], style, label=label)
    ax.set_xlabel("cars per round (rentals x cars)")
    ax.set_ylabel("median round time (ms)")
    ax.set_title("Round time against cars per round")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/round.py", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run, < 30 s")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write figures")
    parser.add_argument("--chart", type=Path, metavar="FILE", help="write a PNG")
    args = parser.parse_args(argv)
    console = Console()

    latency_rounds = 200 if args.quick else 1000
    grid = [(10, 10), (10, 100), (50, 100)] if args.quick else [
        (r, c) for r in (10, 50, 100, 200) for c in (10, 100, 1000)
    ]  # fmt: skip
    points: list[Figures] = []

    with console.status("round latency, two built-in rentals"):
        latency = measure(
            "built-in", 2, 0, latency_rounds, (real_rentals, built_in_bare)
        )
    for rentals, cars in grid:
        count = max(3, min(50, 20_000 // (rentals * cars)))
        with console.status(f"scale: {rentals} rentals x {cars} cars, {count} rounds"):
            points.append(
                measure("scale", rentals, cars, count,
                        (multiplexed(rentals, cars), multiplexed(rentals, cars)))
            )  # fmt: skip
    with console.status("time to table, classroom flow"):
        table_ms = time_to_table(1 if args.quick else 5)

    show(console, latency, points, table_ms)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "latency": asdict(latency) | {"ratio": latency.ratio},
                    "scale": [
                        asdict(p) | {"ratio": p.ratio, "cars_per_s": p.cars_per_s}
                        for p in points
                    ],
                    "time_to_table_ms": table_ms,
                },
                indent=2,
            )  # fmt: skip
        )
    if args.chart and not chart(points, args.chart):
        console.print("no chart: matplotlib is not installed")
    return 0


def show(console: Console, latency: Figures, points: list[Figures], table_ms) -> None:
    head = Table(title="Round latency, two built-in rentals (ms)")
    for column in ("rounds", "median", "p99", "bare median", "bare p99", "ratio"):
        head.add_column(column, justify="right")
    head.add_row(
        str(latency.rounds), f"{latency.median_ms:.2f}", f"{latency.p99_ms:.2f}",
        f"{latency.baseline_median_ms:.2f}", f"{latency.baseline_p99_ms:.2f}",
        f"{latency.ratio:.2f}",
    )  # fmt: skip
    console.print(head)

    scale = Table(title="Scale (median round, ms)")
    for column in ("rentals", "cars each", "rounds", "round", "bare round", "ratio",
                   "cars/s", "peak MiB"):  # fmt: skip
        scale.add_column(column, justify="right")
    for p in points:
        scale.add_row(
            str(p.rentals), str(p.cars), str(p.rounds), f"{p.median_ms:.1f}",
            f"{p.baseline_median_ms:.1f}", f"{p.ratio:.2f}", f"{p.cars_per_s:,.0f}",
            f"{p.peak_mib:.1f}",
        )  # fmt: skip
    console.print(scale)
    console.print(
        f"Time to table (last rental started -> aggregator exit): median "
        f"{statistics.median(table_ms):.0f} ms over {len(table_ms)} run(s)"
    )


if __name__ == "__main__":
    sys.exit(main())
