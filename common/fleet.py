"""Fleets as JSON files: loading, validation, and churn for monitoring demos.

A fleet file holds one object:

    {"name": "...", "location": "...", "api_url": "...",
     "cars": [{"id": 1, "year": 2024, "make": "BMW", "model": "M4",
               "daily_rate": "1800.00", "rented_for_days": 3}, ...]}

``daily_rate`` is a string, so money never passes through a float;
``rented_for_days`` (optional, default 0) rents the car out from the moment
the rental service starts.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from common.cars import Car, Rental
from common.protocol import MAX_CARS, ProtocolError, check_car, check_text

__all__ = ["FLEETS", "Churn", "FleetError", "load_fleet", "parse_amount"]

FLEETS = Path(__file__).resolve().parent.parent / "fleets"
RENTAL_KEYS = {"name", "location", "api_url", "cars"}
CAR_KEYS = {"id", "year", "make", "model", "daily_rate", "rented_for_days"}
MAX_RENTAL_DAYS = 365
CHURN_DAYS = (1, 7)
# Plain digits with at most two decimals: no exponents, separators or spaces.
AMOUNT = re.compile(r"[0-9]{1,7}(\.[0-9]{1,2})?")


def parse_amount(text: str) -> Decimal | None:
    """Return "1800.00"-style text as a Decimal, or None for anything else."""
    return Decimal(text) if AMOUNT.fullmatch(text) else None


class FleetError(ValueError):
    """A fleet file that cannot be used, with the file and field named."""


def load_fleet(path: Path, now: datetime) -> Rental:
    """Return the rental described by the JSON file at ``path``."""
    try:
        data = json.loads(
            path.read_text(encoding="utf-8"),
            parse_float=_FloatText,
            object_pairs_hook=_unique_keys,
        )
    except OSError as exc:
        raise FleetError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise FleetError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise FleetError(f"{path}: not JSON: {exc.msg} at line {exc.lineno}") from None
    except FleetError as exc:
        raise FleetError(f"{path}: {exc}") from None
    except (ValueError, RecursionError) as exc:  # a huge number, deep nesting
        raise FleetError(f"{path}: not a fleet: {exc}") from None
    try:
        return _rental(data, now)
    except (FleetError, ProtocolError) as exc:
        raise FleetError(f"{path}: {exc}") from None


class _FloatText(str):
    """A JSON number with a fraction or exponent, kept as its text.

    Never a float, so no cent is lost; and never a plain str, so the field
    it stands in is refused by name.
    """


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise FleetError(f"{key}: appears twice in one object")
        data[key] = value
    return data


def _rental(data: Any, now: datetime) -> Rental:
    _check_keys(data, RENTAL_KEYS, RENTAL_KEYS, "the fleet")
    for key in ("name", "location", "api_url"):
        if type(data[key]) is not str:
            raise FleetError(f"{key}: must be text")
        check_text(data[key], key)
    cars = data["cars"]
    if type(cars) is not list or not 0 < len(cars) <= MAX_CARS:
        raise FleetError(f"cars: must be a list of 1 to {MAX_CARS} cars")
    seen: set[int] = set()
    built = []
    for index, item in enumerate(cars):
        try:
            car = _car(item, now)
        except (FleetError, ProtocolError) as exc:
            raise FleetError(f"cars[{index}]: {exc}") from None
        if car.id in seen:
            raise FleetError(f"cars[{index}].id: {car.id} is used twice")
        seen.add(car.id)
        built.append(car)
    return Rental(data["name"], data["location"], data["api_url"], tuple(built))


def _car(item: Any, now: datetime) -> Car:
    _check_keys(item, CAR_KEYS - {"rented_for_days"}, CAR_KEYS, "a car")
    rate = parse_amount(item["daily_rate"]) if type(item["daily_rate"]) is str else None
    if rate is None:
        raise FleetError('daily_rate: must be an amount in a string, like "1800.00"')
    days = item.get("rented_for_days", 0)
    if type(days) is not int or not 0 <= days <= MAX_RENTAL_DAYS:
        raise FleetError(f"rented_for_days: must be 0 to {MAX_RENTAL_DAYS}")
    until = now + timedelta(days=days) if days else None
    car = Car(item["id"], item["year"], item["make"], item["model"], rate, until)
    check_car(car)
    return car


def _check_keys(data: Any, required: set[str], allowed: set[str], what: str) -> None:
    if type(data) is not dict:
        raise FleetError(f"{what} must be a JSON object")
    missing = sorted(required - data.keys())
    if missing:
        raise FleetError(f"{missing[0]}: missing")
    unknown = sorted(data.keys() - allowed)
    if unknown:
        raise FleetError(f"{unknown[0]}: unknown field")


class Churn:
    """Rent cars out and take them back at random, from a seeded generator."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)

    def step(self, rental: Rental, now: datetime) -> tuple[Rental, str]:
        """Return the rental with one car rented out or returned, and what changed."""
        index = self._rng.randrange(len(rental.cars))
        car = rental.cars[index]
        if car.is_available(now):
            days = self._rng.randint(*CHURN_DAYS)
            changed = replace(car, rented_until=now + timedelta(days=days))
            event = f"rented out {car.title} (id {car.id}) for {days} days"
        else:
            changed = replace(car, rented_until=None)
            event = f"returned {car.title} (id {car.id})"
        cars = rental.cars[:index] + (changed,) + rental.cars[index + 1 :]
        return replace(rental, cars=cars), event
