"""Faults the processes must survive: kills, restarts, pauses, odd input."""

from __future__ import annotations

import json
import os
import signal

import pytest
import zmq

from common.cars import utc_now
from common.fleet import FLEETS, load_fleet
from common.hub import Aggregator
from common.protocol import ACK, CARS, QTY, encode_reply
from tests.procs import ANY_PORT, start_rental, start_rentals

# The bound for stopping a process on SIGINT or SIGTERM.
STOP_WITHIN_S = 1.0
# Short waits for things that must NOT happen.
NEGATIVE_WAIT_MS = 500
ANSWER_WAIT_MS = 5000


@pytest.fixture
def zmq_ctx():
    ctx = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


@pytest.fixture
def silent_hub(zmq_ctx):
    """Return an XPUB and a REP socket on free ports, driven by the test itself.

    The XPUB socket reports each subscription, so the test knows when a
    rental is listening instead of guessing.
    """
    xpub = zmq_ctx.socket(zmq.XPUB)
    rep = zmq_ctx.socket(zmq.REP)
    for sock in (xpub, rep):
        sock.linger = 0
        sock.bind(ANY_PORT)
    return xpub, rep


def rental_on(spawn, hub, *extra: str):
    """Start Locadora A's service connected to a test's own sockets."""
    pub, rep = (sock.last_endpoint.decode() for sock in hub)
    return start_rental(spawn, "rental_service.py", pub, rep, *extra)


def round_of(agg) -> str:
    return agg.wait_for(r"round (\S+) started")[1]


def test_rentals_survive_the_aggregator_killed_and_restarted(spawn, free_endpoint):
    pub, rep = free_endpoint(), free_endpoint()
    rentals = start_rentals(spawn, pub, rep)

    for attempt in range(5):
        doomed = spawn("aggregator.py", "--pub", pub, "--rep", rep)
        doomed.wait_for(r"bound PUB=")
        if attempt % 3 == 1:  # mid-round, after one reply
            doomed.wait_for(r"reply from")
        elif attempt % 3 == 2:  # frozen: rentals connect, nobody answers
            doomed.signal(signal.SIGSTOP)
        doomed.signal(signal.SIGKILL)
        doomed.wait()

        fresh = spawn("aggregator.py", "--pub", pub, "--rep", rep, "--json")
        assert fresh.wait(30) == 0, fresh.stderr
        assert json.loads(fresh.stdout)["missing"] == 0
    assert all(rental.popen.poll() is None for rental in rentals)


def test_rentals_recover_when_the_aggregator_dies_before_its_ack(spawn):
    # A stand-in aggregator takes both replies and dies without an ACK. Its
    # own context, destroyed before the real aggregator binds the same ports.
    ctx = zmq.Context()
    xpub, router = ctx.socket(zmq.XPUB), ctx.socket(zmq.ROUTER)
    xpub.xpub_verbose = True  # report every subscription, not just the first
    for sock in (xpub, router):
        sock.linger = 0
        sock.bind(ANY_PORT)
    pub, rep = xpub.last_endpoint.decode(), router.last_endpoint.decode()
    rentals = start_rentals(spawn, pub, rep)
    for _ in rentals:
        assert xpub.poll(ANSWER_WAIT_MS) and xpub.recv() == b"\x01" + QTY
    xpub.send_multipart([QTY, b"doomed-1"])
    for _ in rentals:
        assert router.poll(ANSWER_WAIT_MS) and router.recv_multipart()[2] == CARS
    ctx.destroy(linger=0)

    fresh = spawn("aggregator.py", "--pub", pub, "--rep", rep, "--json")

    assert fresh.wait(30) == 0, fresh.stderr
    assert json.loads(fresh.stdout)["missing"] == 0
    for rental in rentals:
        assert rental.matches(r"no answer from .* reopening the REQ socket")


@pytest.mark.parametrize("after_reply", [False, True])
def test_a_rental_killed_mid_round_is_reported_missing(aggregator, spawn, after_reply):
    agg, pub, rep = aggregator("--json", "--expect", "3", "--timeout", "3")
    steady, doomed = start_rentals(spawn, pub, rep)
    if after_reply:
        agg.wait_for(r"reply from 'Locadora B - Aeroporto'")
    else:
        doomed.wait_for(r"waiting for QTY")
    doomed.signal(signal.SIGKILL)

    assert agg.wait() == 1
    result = json.loads(agg.stdout)
    names = [rental["name"] for rental in result["rentals"]]
    expected = ["Locadora A - Centro"] + ["Locadora B - Aeroporto"] * after_reply
    assert names == expected
    assert result["missing"] == 3 - len(expected)
    assert "did not answer" not in agg.stdout  # --json prints nothing else


def test_a_rental_restarted_within_a_round_counts_once(aggregator, spawn):
    agg, pub, rep = aggregator("--json", "--expect", "2", "--timeout", "4")
    first = start_rental(spawn, "rental_service.py", pub, rep)
    agg.wait_for(r"reply from 'Locadora A - Centro'")
    first.signal(signal.SIGKILL)
    again = start_rental(spawn, "rental_service.py", pub, rep)
    again.wait_for(r"ACK round=")

    assert agg.wait() == 1
    result = json.loads(agg.stdout)
    assert [r["name"] for r in result["rentals"]] == ["Locadora A - Centro"]
    assert len(result["rentals"][0]["cars"]) == 3
    assert result["missing"] == 1


def test_two_rentals_with_one_name_count_once_and_warn_once(aggregator, spawn):
    agg, pub, rep = aggregator("--json", "--expect", "2", "--timeout", "3")
    first = start_rental(spawn, "rental_service.py", pub, rep, "--name", "Twin")
    agg.wait_for(r"reply from 'Twin'")
    start_rental(spawn, "rental_service2.py", pub, rep, "--name", "Twin")

    assert agg.wait() == 1
    result = json.loads(agg.stdout)
    (twin,) = result["rentals"]
    # The first answer is kept: Locadora A's fleet has a Porsche 911 Turbo S.
    assert "911 Turbo S" in [car["model"] for car in twin["cars"]]
    assert agg.stderr.count("second reply from 'Twin'") == 1
    assert first.popen.poll() is None


def test_a_late_reply_is_acknowledged_and_stays_out_of_the_next_round(spawn, zmq_ctx):
    with Aggregator(ANY_PORT, ANY_PORT) as hub:
        pub, rep = hub.endpoints
        closed = hub.run_round(expected=1, timeout_s=0.2)
        assert closed.missing == 1

        late = zmq_ctx.socket(zmq.REQ)
        late.linger = 0
        late.connect(rep)
        stale = load_fleet(FLEETS / "locadora_a.json", utc_now())
        late.send_multipart(
            encode_reply(
                closed.round_id,
                "Late Rental",
                "Nowhere",
                "http://x",
                list(stale.cars[:1]),
            )
        )
        start_rental(spawn, "rental_service2.py", pub, rep, "--once")
        current = hub.run_round(expected=1, timeout_s=30)

    assert late.poll(ANSWER_WAIT_MS) and late.recv_multipart() == [
        ACK,
        closed.round_id.encode(),
    ]
    assert [reply.name for reply in current.replies] == ["Locadora B - Aeroporto"]


def test_a_paused_rental_skips_the_rounds_it_slept_through(spawn):
    with Aggregator(ANY_PORT, ANY_PORT) as hub:
        pub, rep = hub.endpoints
        steady, paused = start_rentals(spawn, pub, rep)
        assert hub.run_round(expected=2, timeout_s=30).missing == 0

        paused.signal(signal.SIGSTOP)
        missed = []
        for _ in range(3):  # each round re-broadcasts until its deadline
            result = hub.run_round(expected=2, timeout_s=0.6)
            assert result.missing == 1
            missed.append(result.round_id)

        def resume(names: list[str]) -> None:
            # Called when the steady rental answered, i.e. after the
            # round's first broadcast reached the paused rental's queue.
            if len(names) == 1:
                paused.signal(signal.SIGCONT)

        final = hub.run_round(expected=2, timeout_s=30, on_progress=resume)

    assert final.missing == 0
    paused.wait_for(rf"ACK round={final.round_id}")
    answered = [m[1] for m in paused.matches(r"sent \d+ cars round=(\S+)")]
    assert len(answered) == len(set(answered)), "a round was answered twice"
    assert final.round_id in answered
    assert len(set(answered) & set(missed)) <= 1, "stale rounds answered one by one"


def test_look_alike_commands_are_ignored(spawn, silent_hub):
    xpub, rep = silent_hub
    rental = rental_on(spawn, silent_hub, "-v")
    assert xpub.poll(ANSWER_WAIT_MS) and xpub.recv() == b"\x01" + QTY

    for frames in (
        [b"qty", b"r-1"],
        [b"QTYX", b"r-2"],
        [QTY],
        [QTY, b""],
        [QTY, b"r-3", b"extra"],
        [b""],
    ):
        xpub.send_multipart(frames)
    xpub.send_multipart([QTY, b"r-4"])

    assert rep.poll(ANSWER_WAIT_MS)
    assert rep.recv_multipart()[1] == b"r-4"
    rep.send_multipart([ACK, b"r-4"])
    rental.wait_for(r"ACK round=r-4")
    assert not rep.poll(NEGATIVE_WAIT_MS)
    assert len(rental.matches(r"ignored broadcast")) == 4  # b"" never matches QTY


def test_a_reply_over_the_size_limit_does_not_stop_the_round(
    aggregator, spawn, zmq_ctx
):
    agg, pub, rep = aggregator("--json", "--timeout", "30")
    huge = zmq_ctx.socket(zmq.REQ)
    huge.linger = 0
    huge.connect(rep)
    frames = encode_reply(round_of(agg), "Huge", "Here", "http://h", [])
    frames[-1] = b"\x00" * (5 * 1024 * 1024)
    huge.send_multipart(frames)
    # libzmq drops the connection of an oversized message: no answer comes.
    assert not huge.poll(NEGATIVE_WAIT_MS)
    start_rentals(spawn, pub, rep, "--once")

    assert agg.wait() == 0
    result = json.loads(agg.stdout)
    assert result["missing"] == 0 and len(result["rentals"]) == 2


@pytest.mark.parametrize(
    ("bind", "connect"),
    [
        ("tcp://localhost:{port}", "tcp://localhost:{port}"),
        ("tcp://127.0.0.1:{port}", "tcp://localhost:{port}"),
        ("tcp://*:{port}", "tcp://127.0.0.1:{port}"),
        ("tcp://[::1]:{port}", "tcp://[::1]:{port}"),
    ],
)
def test_endpoint_spellings_work_on_both_sides(spawn, free_endpoint, bind, connect):
    ports = [free_endpoint().rsplit(":", 1)[1] for _ in range(2)]
    pub_bind, rep_bind = (bind.format(port=port) for port in ports)
    pub, rep = (connect.format(port=port) for port in ports)
    agg = spawn(
        "aggregator.py",
        "--pub",
        pub_bind,
        "--rep",
        rep_bind,
        "--expect",
        "1",
        "--json",
        "--timeout",
        "30",
    )
    agg.wait_for(r"bound PUB=")
    rental = start_rental(spawn, "rental_service.py", pub, rep, "--once")

    assert agg.wait() == 0, agg.stderr
    assert rental.wait() == 0


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)]
)
def test_the_aggregator_stops_mid_round(aggregator, spawn, signum, code):
    agg, pub, rep = aggregator("--expect", "3", "--timeout", "30")
    start_rentals(spawn, pub, rep)
    agg.wait_for(r"reply from", count=2)
    agg.signal(signum)

    assert agg.wait(STOP_WITHIN_S) == code
    assert "Traceback" not in agg.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_rental_waiting_for_its_ack_stops_at_once(spawn, silent_hub, signum):
    xpub, rep = silent_hub
    rental = rental_on(spawn, silent_hub)
    assert xpub.poll(ANSWER_WAIT_MS) and xpub.recv() == b"\x01" + QTY
    xpub.send_multipart([QTY, b"r-1"])
    assert rep.poll(ANSWER_WAIT_MS)  # the reply arrived; no ACK will be sent
    rental.signal(signum)

    assert rental.wait(STOP_WITHIN_S) == 0
    assert "Traceback" not in rental.stderr


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)]
)
def test_the_demo_stops_its_children_and_leaves_no_orphan(spawn, signum, code):
    # Three expected rentals and two started: the round stays open.
    demo = spawn("demo.py", "--pub", ANY_PORT, "--rep", ANY_PORT, "--expect", "3")
    for name in ("locadora A", "locadora B"):
        demo.wait_for(rf"{name} +\| .*ACK round=")
    pids = [int(m[1]) for m in demo.matches(r"demo: started .* \(pid (\d+)\)")]
    assert len(pids) == 3
    demo.signal(signum)

    assert demo.wait() == code, demo.stderr
    assert "Traceback" not in demo.stderr
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_second_aggregator_on_a_live_ipc_path_fails(spawn, tmp_path):
    pub, rep = f"ipc://{tmp_path}/pub.sock", f"ipc://{tmp_path}/rep.sock"
    first = spawn("aggregator.py", "--pub", pub, "--rep", rep)
    first.wait_for(r"bound PUB=")
    second = spawn("aggregator.py", "--pub", pub, "--rep", rep)

    assert second.wait() == 2
    assert "another process listens there" in second.stderr
    assert first.popen.poll() is None


def test_a_markup_like_name_reaches_the_table_as_written(aggregator, spawn):
    agg, pub, rep = aggregator("--expect", "1", "--timeout", "30")
    start_rental(
        spawn, "rental_service.py", pub, rep, "--once", "--name", "Locadora [/b]"
    )

    assert agg.wait() == 0, agg.stderr
    assert "Locadora [/b]" in agg.stdout


def test_the_aggregator_drops_cars_that_are_still_rented(aggregator, zmq_ctx):
    agg, _, rep = aggregator("-v", "--json", "--expect", "1", "--timeout", "30")
    round_id = round_of(agg)
    # Its Huracan is rented for three days.
    rental = load_fleet(FLEETS / "locadora_a.json", utc_now())
    req = zmq_ctx.socket(zmq.REQ)
    req.linger = 0
    req.connect(rep)
    req.send_multipart(
        encode_reply(
            round_id, rental.name, rental.location, rental.api_url, list(rental.cars)
        )
    )

    assert req.poll(ANSWER_WAIT_MS) and req.recv_multipart()[0] == ACK
    assert agg.wait() == 0
    (only,) = json.loads(agg.stdout)["rentals"]
    assert "Huracan" not in {car["model"] for car in only["cars"]}
    assert len(only["cars"]) == 3


def test_an_ipc_endpoint_never_replaces_a_file(spawn, tmp_path):
    victim = tmp_path / "notes.txt"
    victim.write_text("keep me")
    agg = spawn("aggregator.py", "--pub", f"ipc://{victim}", "--rep", ANY_PORT)

    assert agg.wait() == 2
    assert "a file that is not a socket is there" in agg.stderr
    assert victim.read_text() == "keep me"
