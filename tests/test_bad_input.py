"""Hostile and broken messages sent to the real aggregator's REP socket."""

from __future__ import annotations

import functools
import json
import os
import pickle
import struct
import subprocess
import tracemalloc
from datetime import datetime
from decimal import Decimal

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.cars import Car
from common.protocol import (
    CARS,
    ERR,
    ProtocolError,
    decode_cars,
    decode_reply,
    encode_reply,
)
from tests.procs import start_rental

ANSWER_WAIT_MS = 5000
EXAMPLES_PER_BATCH = 500
# A real rental's name: a bad message that slipped through would take its
# place in the round and change the table.
VICTIM = "Locadora A - Centro"
GOOD_CAR = Car(1, 2024, "BMW", "M4", Decimal("100.00"))
# LONG1 opcodes of integers that all hash alike (multiples of 2**61 - 1).
COLLIDING = [
    b"\x8a\x10" + (k * (2**61 - 1)).to_bytes(16, "little", signed=True)
    for k in range(1, 50)
]


class _Calls:
    """Pickles as a call of ``func(*args)``: what an attacker would send."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def forbidden_payloads(marker: str) -> list[bytes]:
    """Return pickles that would create ``marker`` if anything in them ran."""
    calls = [
        _Calls(os.system, f"touch {marker}"),
        _Calls(subprocess.Popen, ["touch", marker]),
        _Calls(eval, f"open({marker!r}, 'w')"),
        _Calls(exec, f"open({marker!r}, 'w')"),
        functools.partial(os.system, f"touch {marker}"),
    ]
    payloads = []
    for call in calls:
        evil_car = Car(1, 2024, "BMW", "M4", Decimal("1.00"))
        object.__setattr__(evil_car, "model", call)
        for wrapped in (call, [call], [GOOD_CAR, [call]], [evil_car]):
            payloads.append(pickle.dumps(wrapped))
    return payloads


def not_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


# Texts that are never a valid name, location, make or model.
bad_str = st.one_of(
    st.just(""),
    st.text(" \t", min_size=1, max_size=5),
    st.text(min_size=201, max_size=260),
    st.text(st.characters(categories=["Cc"]), min_size=1, max_size=3).map(
        lambda t: f"A{t}"
    ),
)
bad_text = st.one_of(
    bad_str.map(str.encode), st.binary(min_size=1, max_size=30).filter(not_utf8)
)

bad_field = {
    "id": st.one_of(
        st.integers(max_value=-1),
        st.integers(min_value=2**63),
        st.just(10**5000),  # too long to print
        st.text(),
        st.floats(),
        st.booleans(),
        st.none(),
    ),
    "year": st.one_of(
        st.integers(max_value=1885),
        st.integers(min_value=2101),
        st.floats(),
        st.text(),
        st.none(),
    ),
    "make": st.one_of(
        bad_str,
        st.integers(),
        st.binary(),
        st.just(""),
    ),
    "model": st.one_of(st.just(""), st.just("x" * 201), st.integers(), st.none()),
    "daily_rate": st.one_of(
        st.decimals(max_value=0, allow_nan=False),
        st.decimals(min_value=1_000_000, allow_infinity=False, allow_nan=False),
        st.sampled_from(
            [
                Decimal("NaN"),
                Decimal("sNaN"),
                Decimal("Infinity"),
                Decimal("-Infinity"),
                Decimal("1.001"),
            ]
        ),
        st.floats(),
        st.text(),
        st.integers(),
    ),
    "rented_until": st.one_of(st.datetimes(), st.text(), st.integers()),
}


@st.composite
def bad_car(draw) -> Car:
    field = draw(st.sampled_from(sorted(bad_field)))
    car = Car(1, 2024, "BMW", "M4", Decimal("100.00"))
    object.__setattr__(car, field, draw(bad_field[field]))
    return car


def bad_payloads(valid: bytes, forbidden: list[bytes]) -> st.SearchStrategy[bytes]:
    huge_bytes = b"\x80\x04\x8e" + struct.pack("<Q", 2**40) + b"x"
    return st.one_of(
        # Random bytes cannot name the Car class without its name in clear
        # (or in an escape), so they are never a valid car list.
        st.binary(max_size=200).filter(lambda b: b"Car" not in b and b"\\" not in b),
        st.integers(0, len(valid) - 1).map(lambda k: valid[:k]),
        st.sampled_from(forbidden),
        bad_car().map(lambda car: pickle.dumps([car])),
        st.sampled_from([GOOD_CAR, (GOOD_CAR,), {1: GOOD_CAR}, "cars", None]).map(
            pickle.dumps
        ),
        st.just(huge_bytes),
    )


@st.composite
def bad_message(draw, round_id: str, forbidden: list[bytes]) -> list[bytes]:
    """Return frames that are wrong in at least one way for ``round_id``."""
    frames = encode_reply(round_id, VICTIM, "Centro", "http://a", [GOOD_CAR])
    flaw = draw(
        st.sampled_from(["frames", "command", "round", "header", "count", "payload"])
    )
    if flaw == "frames":
        return draw(
            st.lists(st.binary(max_size=20), min_size=1, max_size=12).filter(
                lambda f: len(f) != len(frames)
            )
        )
    if flaw == "command":
        frames[0] = draw(st.binary(max_size=8).filter(lambda b: b != CARS))
    elif flaw == "round":
        frames[1] = draw(st.binary(max_size=40).filter(lambda b: b != frames[1]))
    elif flaw == "header":
        frames[draw(st.sampled_from([2, 3, 4]))] = draw(bad_text)
    elif flaw == "count":
        frames[5] = draw(
            st.one_of(
                st.integers(min_value=0)
                .filter(lambda n: n != 1)
                .map(lambda n: str(n).encode()),
                st.text(max_size=5).filter(lambda t: not t.isdigit()).map(str.encode),
            )
        )
    else:
        frames[6] = draw(bad_payloads(frames[6], forbidden))
    return frames


def test_a_thousand_bad_messages_leave_the_round_exact(aggregator, spawn, tmp_path):
    marker = tmp_path / "pwned"
    forbidden = forbidden_payloads(str(marker))
    agg, pub, rep = aggregator("-v", "--json", "--timeout", "300")
    round_id = agg.wait_for(r"round (\S+) started")[1]
    ctx = zmq.Context()
    sent = 0

    def ask(frames: list[bytes]) -> list[bytes] | None:
        # A fresh REQ socket per message: a failed example cannot leave the
        # next one with a socket stuck waiting for an answer.
        with ctx.socket(zmq.REQ) as req:
            req.linger = 0
            req.connect(rep)
            req.send_multipart(frames)
            return req.recv_multipart() if req.poll(ANSWER_WAIT_MS) else None

    @settings(
        max_examples=EXAMPLES_PER_BATCH,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(frames=bad_message(round_id, forbidden))
    def each_is_refused(frames: list[bytes]) -> None:
        nonlocal sent
        answer = ask(frames)
        assert answer is not None, f"no answer:\n{agg.stderr[-3000:]}"
        assert answer[0] == ERR, answer
        sent += 1

    try:
        each_is_refused()
        first = start_rental(spawn, "rental_service.py", pub, rep, "--once")
        assert first.wait(30) == 0
        each_is_refused()
        start_rental(spawn, "rental_service2.py", pub, rep, "--once")

        assert agg.wait(30) == 0, agg.stderr[-2000:]
    finally:
        ctx.destroy(linger=0)
    assert sent >= 2 * EXAMPLES_PER_BATCH
    result = json.loads(agg.stdout)
    assert [r["name"] for r in result["rentals"]] == [VICTIM, "Locadora B - Aeroporto"]
    assert sum(len(r["cars"]) for r in result["rentals"]) == 7
    assert result["best_offer"]["car"]["model"] == "M4 Competition"
    assert not marker.exists(), "a pickle ran code in the aggregator"
    assert "Traceback" not in agg.stderr


@pytest.mark.parametrize(
    "payload",
    [
        b"\x80\x04\x8e" + struct.pack("<Q", 2**40) + b"x",  # 1 TiB of bytes
        b"\x80\x04\x8d" + struct.pack("<Q", 2**33) + b"x",  # 8 GiB of text
        b"\x80\x04" + b"(" * 100_000 + b"]" * 100_000,  # deep nesting, unclosed
        b"\x80\x04]r\x00\x00\x00\x01.",  # memo slot 2**24: the C unpickler's bomb
        b"\x80\x02]p16777216\n.",  # the same in text
    ],
    ids=["bytes", "text", "nesting", "memo", "text memo"],
)
def test_a_pickle_that_claims_a_huge_object_is_refused_cheaply(payload):
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError):
            decode_cars(payload, 1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Memory in proportion to the input is fine; a bomb is gigabytes from bytes.
    limit = 2**20 + 100 * len(payload)
    assert peak < limit, f"{peak / 2**20:.0f} MiB for a {len(payload)}-byte pickle"


def test_naive_datetimes_are_refused():
    car = Car(1, 2024, "BMW", "M4", Decimal("1.00"), datetime(2024, 1, 1))
    with pytest.raises(ProtocolError, match="timezone-aware"):
        decode_cars(pickle.dumps([car]), 1)


@pytest.mark.parametrize(
    "payload",
    [
        # A dict whose key is a tuple nested 300,000 deep: hashing it would
        # crash the interpreter.
        b"\x80\x04}" + b")" + b"\x85" * 300_000 + b"Ns.",
        # A set of colliding integers: quadratic to build.
        b"\x80\x04\x8f(" + b"".join(COLLIDING) + b"\x90.",
        # BUILD on the Car class itself: would change it for every later reply.
        b"\x80\x04\x8c\x0bcommon.cars\x8c\x03Car\x93N}\x8c\x05title\x8c\x01xs\x86b.",
    ],
    ids=["deep dict key", "colliding set", "build on Car"],
)
def test_opcodes_a_car_list_never_needs_are_refused(payload):
    with pytest.raises(ProtocolError, match="is not allowed in a car list"):
        decode_cars(payload, 1)
    assert Car(1, 2024, "BMW", "M4", Decimal("1.00")).title == "2024 BMW M4"


def test_a_trailing_space_makes_no_second_rental():
    frames = encode_reply(
        "r-1", "Locadora A - Centro ", "Centro", "http://a", [GOOD_CAR]
    )

    with pytest.raises(ProtocolError, match="starts or ends with a space"):
        decode_reply(frames)
