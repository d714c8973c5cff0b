"""Consolidate the replies of one round: sorting, best offer, JSON document."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from common.cars import Car
from common.protocol import Reply

__all__ = ["Offer", "RoundResult", "money"]


def money(amount: Decimal) -> str:
    """Return an amount with two decimals, e.g. "1800.00"."""
    return f"{amount:.2f}"


@dataclass(frozen=True)
class Offer:
    """One available car at one rental."""

    rental: Reply
    car: Car

    def sort_key(self) -> tuple[Decimal, str, int]:
        """Return the ordering of offers: cheapest first, then rental, then car id."""
        return (self.car.daily_rate, self.rental.name, self.car.id)


@dataclass(frozen=True)
class RoundResult:
    """What one round gathered, in a fixed order."""

    number: int
    round_id: str
    expected: int
    elapsed_ms: float
    replies: tuple[Reply, ...]

    @classmethod
    def build(
        cls,
        *,
        number: int,
        round_id: str,
        expected: int,
        elapsed_ms: float,
        replies: list[Reply],
    ) -> RoundResult:
        """Return a result with rentals sorted by name, cars by rate then id."""
        ordered = []
        for reply in sorted(replies, key=lambda r: r.name):
            cars = sorted(reply.cars, key=lambda c: (c.daily_rate, c.id))
            ordered.append(replace(reply, cars=cars))
        return cls(number, round_id, expected, elapsed_ms, tuple(ordered))

    @property
    def missing(self) -> int:
        """Return how many expected rentals did not answer."""
        return max(0, self.expected - len(self.replies))

    @property
    def car_count(self) -> int:
        """Return how many available cars the round gathered."""
        return sum(len(reply.cars) for reply in self.replies)

    def offers(self) -> list[Offer]:
        """Return every car of the round, cheapest first."""
        every = [Offer(reply, car) for reply in self.replies for car in reply.cars]
        return sorted(every, key=Offer.sort_key)

    def best_offer(self) -> Offer | None:
        """Return the lowest daily rate; ties go to the rental name, then car id."""
        offers = self.offers()
        return offers[0] if offers else None

    def to_json(self) -> dict[str, Any]:
        """Return the round as the documented JSON document."""
        best = self.best_offer()
        return {
            "round": self.number,
            "expected": self.expected,
            "elapsed_ms": round(self.elapsed_ms, 3),
            "rentals": [
                {
                    "name": reply.name,
                    "location": reply.location,
                    "api_url": reply.api_url,
                    "cars": [_car_json(car) for car in reply.cars],
                }
                for reply in self.replies
            ],
            "missing": self.missing,
            "best_offer": None
            if best is None
            else {
                "rental": best.rental.name,
                "location": best.rental.location,
                "car": _car_json(best.car),
                "daily_rate": money(best.car.daily_rate),
            },
        }


def _car_json(car: Car) -> dict[str, Any]:
    return {
        "id": car.id,
        "year": car.year,
        "make": car.make,
        "model": car.model,
        "daily_rate": money(car.daily_rate),
    }
