"""The wire protocol: broadcast, reply and acknowledgement frames.

Broadcast (PUB -> SUB):  [b"QTY", round id]
Reply     (REQ -> REP):  [b"CARS", round id, name, location, API URL, car count,
                          pickled list of Car]
Answer    (REP -> REQ):  [b"ACK", round id] or [b"ERR", reason]

Header frames are UTF-8 text. The last reply frame is what ``send_pyobj`` sends:
``pickle.dumps(cars, pickle.DEFAULT_PROTOCOL)``.
"""

from __future__ import annotations

import functools
import io
import pickle
import secrets
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from common.cars import Car

__all__ = [
    "ACK",
    "CARS",
    "ERR",
    "MAX_MESSAGE_BYTES",
    "QTY",
    "REPLY_FRAMES",
    "ProtocolError",
    "Reply",
    "RoundIds",
    "check_car",
    "check_text",
    "decode_cars",
    "decode_reply",
    "encode_query",
    "encode_reply",
    "parse_query",
]

QTY = b"QTY"
CARS = b"CARS"
ACK = b"ACK"
ERR = b"ERR"

REPLY_FRAMES = 7
# 5,000 cars (the most a reply may hold) pickle to about 200 KiB.
MAX_MESSAGE_BYTES = 1024 * 1024
MAX_TEXT_CHARS = 200
MAX_CARS = 5_000
MAX_DAILY_RATE = Decimal("1000000")
CENT = Decimal("0.01")
MAX_CAR_ID = 2**63 - 1
FIRST_CAR_YEAR = 1886
LAST_CAR_YEAR = 2100

# The only globals a reply's pickle may name. Everything else is refused
# before it is looked up, so no other callable can ever run.
_ALLOWED_GLOBALS = {
    ("common.cars", "Car"): Car,
    ("decimal", "Decimal"): Decimal,
    ("datetime", "datetime"): datetime,
    ("datetime", "timedelta"): timedelta,
    ("datetime", "timezone"): timezone,
}
_CAR_FIELDS = {f.name for f in fields(Car)}


class ProtocolError(ValueError):
    """A message that does not follow the protocol."""


@dataclass(frozen=True)
class Reply:
    """One rental's answer to one round."""

    round_id: str
    name: str
    location: str
    api_url: str
    cars: list[Car]


class RoundIds:
    """Issue round ids unique across runs: a random per-run prefix and a counter."""

    def __init__(self) -> None:
        self.prefix = secrets.token_hex(4)
        self.count = 0
        self._issued: set[str] = set()

    def next(self) -> str:
        """Return the id of a new round."""
        self.count += 1
        round_id = f"{self.prefix}-{self.count}"
        self._issued.add(round_id)
        return round_id

    def was_issued(self, round_id: str) -> bool:
        """Return True for an id this run has handed out."""
        return round_id in self._issued


def encode_query(round_id: str) -> list[bytes]:
    """Return the broadcast frames that ask every rental for its cars."""
    return [QTY, round_id.encode()]


def parse_query(frames: list[bytes]) -> str | None:
    """Return the round id of a well-formed broadcast, or None for anything else.

    A SUB socket matches topics by prefix, so ``QTYX`` also arrives here; the
    command is checked exactly.
    """
    if len(frames) != 2 or frames[0] != QTY:
        return None
    try:
        return _text(frames[1], "round id")
    except ProtocolError:
        return None


def encode_reply(
    round_id: str, name: str, location: str, api_url: str, cars: list[Car]
) -> list[bytes]:
    """Return the frames of a rental's reply to round ``round_id``."""
    header = [round_id, name, location, api_url, str(len(cars))]
    return [CARS, *(text.encode() for text in header), pickle.dumps(cars)]


def decode_header(frames: list[bytes]) -> tuple[str, str, str, str, int]:
    """Check a reply's frames and return its text headers and car count."""
    if len(frames) != REPLY_FRAMES:
        raise ProtocolError(f"expected {REPLY_FRAMES} frames, got {len(frames)}")
    if frames[0] != CARS:
        raise ProtocolError(f"unknown command {frames[0][:20]!r}")
    round_id = _text(frames[1], "round id")
    name = _text(frames[2], "rental name")
    location = _text(frames[3], "location")
    api_url = _text(frames[4], "API URL")
    count_text = _text(frames[5], "car count")
    if not (count_text.isascii() and count_text.isdigit()):
        raise ProtocolError(f"car count is not a number: {count_text[:20]!r}")
    count = int(count_text)
    if count > MAX_CARS:
        raise ProtocolError(f"car count {count} is over the limit of {MAX_CARS}")
    return round_id, name, location, api_url, count


def decode_reply(frames: list[bytes]) -> Reply:
    """Return the reply carried by ``frames``, or raise ProtocolError.

    Warning: the car list is a pickle. It is loaded with a restricted unpickler
    that resolves only the globals in ``_ALLOWED_GLOBALS``; pickles are still a
    way for a peer to make this process allocate memory, so accept replies only
    from peers you trust.
    """
    round_id, name, location, api_url, count = decode_header(frames)
    return Reply(round_id, name, location, api_url, decode_cars(frames[6], count))


def decode_cars(payload: bytes, count: int) -> list[Car]:
    """Unpickle and validate a list of ``count`` cars, running no foreign code."""
    try:
        cars = _RestrictedUnpickler(io.BytesIO(payload)).load()
    except ProtocolError:
        raise
    except Exception as exc:  # a corrupt pickle can raise almost anything
        reason = f"{type(exc).__name__}: {exc}".rstrip(": ")
        raise ProtocolError(f"unreadable car list: {reason}") from exc
    if type(cars) is not list:
        raise ProtocolError(f"car list is a {type(cars).__name__}, not a list")
    if len(cars) != count:
        raise ProtocolError(f"car count says {count}, list holds {len(cars)}")
    ids = set()
    for car in cars:
        check_car(car)
        if car.id in ids:
            raise ProtocolError(f"car id {car.id} appears twice")
        ids.add(car.id)
    return cars


def _refuse(opcode: bytes, unpickler: object) -> None:
    raise ProtocolError(f"pickle opcode {opcode!r} is not allowed in a car list")


# The pure-Python unpickler, not the C one: the C unpickler sizes its memo
# table from an index the pickle states (PUT, LONG_BINPUT), so five bytes can
# make it allocate and clear gigabytes. The Python one keeps its memo in a
# dict. It is about seven times slower (12 ms against 1.7 ms for 1,000 cars).
class _RestrictedUnpickler(pickle._Unpickler):
    # A car list needs lists, tuples, texts, numbers, None and calls of the
    # allowed classes. Opcodes for anything else are refused: dicts and sets
    # (hashing a deeply nested key crashes the interpreter; colliding keys
    # take quadratic time), BUILD (it would set attributes on the allowed
    # classes themselves), and the old instance-making opcodes.
    dispatch = dict(pickle._Unpickler.dispatch)
    for _opcode in (
        pickle.EMPTY_DICT, pickle.DICT, pickle.SETITEM, pickle.SETITEMS,
        pickle.EMPTY_SET, pickle.ADDITEMS, pickle.FROZENSET,
        pickle.BUILD, pickle.INST, pickle.OBJ, pickle.NEWOBJ, pickle.NEWOBJ_EX,
    ):  # fmt: skip
        dispatch[_opcode[0]] = functools.partial(_refuse, _opcode)
    del _opcode

    def find_class(self, module: str, name: str) -> object:
        try:
            return _ALLOWED_GLOBALS[module, name]
        except KeyError:
            raise ProtocolError(f"forbidden global {module}.{name} in pickle") from None


def _text(frame: bytes, what: str) -> str:
    try:
        text = frame.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(f"{what} is not UTF-8 text") from None
    check_text(text, what)
    return text


def check_text(text: str, what: str) -> None:
    """Raise ProtocolError unless ``text`` is short, printable and not blank."""
    if not text.strip():
        raise ProtocolError(f"{what} is empty")
    if not text.isprintable():
        raise ProtocolError(f"{what} holds control characters")
    if len(text) > MAX_TEXT_CHARS:
        raise ProtocolError(f"{what} is over {MAX_TEXT_CHARS} characters")
    if text != text.strip():
        raise ProtocolError(f"{what} starts or ends with a space")


def check_car(car: object) -> None:
    """Raise ProtocolError unless ``car`` is a Car with sensible values."""
    if type(car) is not Car:
        raise ProtocolError(f"car list holds a {type(car).__name__}, not a Car")
    state = getattr(car, "__dict__", None)
    if not isinstance(state, dict) or set(state) != _CAR_FIELDS:
        raise ProtocolError("car does not have exactly the Car fields")
    if type(car.id) is not int or not 0 <= car.id <= MAX_CAR_ID:
        raise ProtocolError(f"car id {_show(car.id)} is not a whole number")
    if type(car.year) is not int or not FIRST_CAR_YEAR <= car.year <= LAST_CAR_YEAR:
        raise ProtocolError(f"car year {_show(car.year)} is not plausible")
    for label, value in (("make", car.make), ("model", car.model)):
        if type(value) is not str:
            raise ProtocolError(f"car {label} is a {type(value).__name__}, not text")
        check_text(value, f"car {label}")
    rate = car.daily_rate
    if type(rate) is not Decimal or not rate.is_finite():
        raise ProtocolError(f"daily rate {_show(rate)} is not a finite Decimal")
    if not CENT <= rate < MAX_DAILY_RATE or rate != rate.quantize(CENT):
        raise ProtocolError(f"daily rate {_show(rate)} is not an amount in R$")
    until = car.rented_until
    if until is not None and (type(until) is not datetime or until.tzinfo is None):
        raise ProtocolError("rented_until is not a timezone-aware datetime")


def _show(value: object) -> str:
    """Return a short, safe rendering of a value from the network for a message."""
    try:
        text = repr(str(value) if isinstance(value, Decimal) else value)
    except (ValueError, RecursionError):  # an int too long, a tuple too deep
        return f"<a very long {type(value).__name__}>"
    return text if len(text) <= 24 else text[:21] + "..."
