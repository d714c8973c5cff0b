"""Message framing and the restricted unpickler."""

import os
import pickle
from decimal import Decimal

import pytest

from common.cars import Car
from common.protocol import (
    CARS,
    ProtocolError,
    decode_reply,
    encode_query,
    encode_reply,
    parse_query,
)

BMW = Car(5, 2024, "BMW", "M4 Competition", Decimal("1800.00"))


def frames_with(payload: bytes, count: int = 1) -> list[bytes]:
    frames = encode_reply("r-1", "A", "Centro", "http://a", [BMW])
    frames[5] = str(count).encode()
    frames[6] = payload
    return frames


def test_a_reply_survives_the_round_trip():
    frames = encode_reply("r-1", "Locadora A", "Centro", "http://a", [BMW])

    assert frames[0] == CARS
    assert frames[6] == pickle.dumps([BMW])  # what send_pyobj would send
    decoded = decode_reply(frames)
    assert decoded.cars == [BMW]
    assert (decoded.round_id, decoded.name, decoded.location) == (
        "r-1",
        "Locadora A",
        "Centro",
    )


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        ([CARS, b"r-1"], "expected 7 frames"),
        ([b"CAR", b"r", b"A", b"B", b"C", b"1", b""], "unknown command"),
        ([CARS, b"r", b"\xff\xfe", b"B", b"C", b"1", b""], "not UTF-8"),
        ([CARS, b"r", b"", b"B", b"C", b"1", b""], "rental name is empty"),
        ([CARS, b"r", b"A", b"B", b"C", b"-1", b""], "not a number"),
        ([CARS, b"r", b"A", b"B", b"C", b"\xd9\xa1", b""], "not a number"),
    ],
)
def test_malformed_frames_are_refused(frames, message):
    with pytest.raises(ProtocolError, match=message):
        decode_reply(frames)


def test_the_car_count_must_match_the_list():
    with pytest.raises(ProtocolError, match="car count says 2, list holds 1"):
        decode_reply(frames_with(pickle.dumps([BMW]), count=2))


class _RunsCommand:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


@pytest.mark.parametrize(
    "wrap",
    [
        lambda evil: evil,
        lambda evil: [evil],
        lambda evil: [BMW, [evil]],
    ],
    ids=["bare", "in the list", "nested"],
)
def test_a_pickle_that_runs_a_command_is_refused_and_runs_nothing(tmp_path, wrap):
    marker = tmp_path / "ran"
    payload = pickle.dumps(wrap(_RunsCommand(str(marker))))
    # The payload really would run the command if loaded without restriction.
    assert "system" in str(payload)

    with pytest.raises(ProtocolError, match="forbidden global"):
        decode_reply(frames_with(payload))
    assert not marker.exists()


def test_a_command_hidden_in_a_car_field_is_refused(tmp_path):
    marker = tmp_path / "ran"
    car = Car(1, 2024, "BMW", "M4", Decimal("1.00"))
    object.__setattr__(car, "model", _RunsCommand(str(marker)))

    with pytest.raises(ProtocolError, match="forbidden global"):
        decode_reply(frames_with(pickle.dumps([car])))
    assert not marker.exists()


@pytest.mark.parametrize(
    "bad",
    [
        Car(1, 2024, "BMW", "M4", Decimal("-1")),
        Car(1, 2024, "BMW", "M4", Decimal("NaN")),
        Car(1, 2024, "BMW", "M4", Decimal("Infinity")),
        Car(1, 2024, "BMW", "M4", 1800.0),  # float money
        Car(1, 2024, "", "M4", Decimal("1")),
        Car(1, 99999, "BMW", "M4", Decimal("1")),
        Car("1", 2024, "BMW", "M4", Decimal("1")),
    ],
)
def test_cars_with_wrong_values_are_refused(bad):
    with pytest.raises(ProtocolError):
        decode_reply(frames_with(pickle.dumps([bad])))


def test_truncated_pickles_are_refused():
    payload = pickle.dumps([BMW])

    with pytest.raises(ProtocolError, match="unreadable"):
        decode_reply(frames_with(payload[: len(payload) // 2]))


@pytest.mark.parametrize(
    ("frames", "round_id"),
    [
        (encode_query("abc-1"), "abc-1"),
        ([b"QTYX", b"abc-1"], None),
        ([b"qty", b"abc-1"], None),
        ([b"QTY"], None),
        ([b"QTY", b""], None),
        ([b"QTY", b"abc-1", b"extra"], None),
    ],
)
def test_only_the_exact_qty_command_is_a_query(frames, round_id):
    assert parse_query(frames) == round_id


def test_a_car_id_twice_in_one_reply_is_refused():
    twin = Car(5, 2023, "BMW", "M3", Decimal("900.00"))

    with pytest.raises(ProtocolError, match="car id 5 appears twice"):
        decode_reply(frames_with(pickle.dumps([BMW, twin]), count=2))


@pytest.mark.parametrize("rate", ["0.001", "1E-999999", "0.00"])
def test_rates_below_one_cent_are_refused(rate):
    cheap = Car(1, 2024, "BMW", "M4", Decimal(rate))

    with pytest.raises(ProtocolError, match="not an amount"):
        decode_reply(frames_with(pickle.dumps([cheap])))


@pytest.mark.parametrize("name", ["A\x1b[2J", "A\nfake log line", "A\r"])
def test_names_with_control_characters_are_refused(name):
    frames = encode_reply("r-1", name, "Centro", "http://a", [BMW])

    with pytest.raises(ProtocolError, match="control characters"):
        decode_reply(frames)


def test_a_huge_car_id_is_refused_without_breaking_the_message():
    huge = Car(10**5000, 2024, "BMW", "M4", Decimal("1.00"))

    with pytest.raises(ProtocolError, match="a very long int"):
        decode_reply(frames_with(pickle.dumps([huge])))
