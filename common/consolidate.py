"""Consolidate the replies of one round: filters, sorting, best offers, JSON."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import cached_property
from typing import Any

from common.cars import Car
from common.protocol import Reply

__all__ = ["Filters", "Offer", "RoundResult", "fold", "money"]


def money(amount: Decimal) -> str:
    """Return an amount with two decimals, e.g. "1800.00"."""
    return f"{amount:.2f}"


def fold(text: str) -> str:
    """Return ``text`` without case or accents: "Galeão" -> "galeao"."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return bare.casefold()


@dataclass(frozen=True)
class Filters:
    """Which cars to keep: by location and make (folded, contained) and rate."""

    location: str | None = None
    make: str | None = None
    max_rate: Decimal | None = None

    def keeps(self, rental: Reply, car: Car) -> bool:
        """Return True when the car passes every filter that is set."""
        if self.location and fold(self.location) not in fold(rental.location):
            return False
        if self.make and fold(self.make) not in fold(car.make):
            return False
        return self.max_rate is None or car.daily_rate <= self.max_rate

    def to_json(self) -> dict[str, Any]:
        """Return the filters that are set, for the JSON document."""
        return {
            key: money(value) if isinstance(value, Decimal) else value
            for key, value in vars(self).items()
            if value is not None
        }


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
    """What one round gathered, in a fixed order.

    ``days``, when set, is the length of the rental being priced: totals are
    the daily rate times ``days``, and the best offer is the lowest total.
    """

    number: int
    round_id: str
    expected: int
    elapsed_ms: float
    replies: tuple[Reply, ...]
    days: int | None = None
    filters: Filters = field(default_factory=Filters)

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

    def narrowed(self, filters: Filters, days: int | None = None) -> RoundResult:
        """Return the result with only the cars ``filters`` keeps, priced for days.

        Every rental that answered stays listed, with its matching cars.
        """
        replies = tuple(
            replace(reply, cars=[c for c in reply.cars if filters.keeps(reply, c)])
            for reply in self.replies
        )
        return replace(self, replies=replies, days=days, filters=filters)

    @property
    def missing(self) -> int:
        """Return how many expected rentals did not answer."""
        return max(0, self.expected - len(self.replies))

    @property
    def car_count(self) -> int:
        """Return how many available cars the round gathered."""
        return sum(len(reply.cars) for reply in self.replies)

    def total(self, car: Car) -> Decimal:
        """Return what the car costs for the result's days (one if not set)."""
        return car.daily_rate * (self.days or 1)

    @cached_property
    def offers(self) -> list[Offer]:
        """Every car of the round, cheapest first (sorted once, then reused)."""
        every = [Offer(reply, car) for reply in self.replies for car in reply.cars]
        return sorted(every, key=Offer.sort_key)

    def best_offer(self) -> Offer | None:
        """Return the lowest total; ties go to the rental name, then car id."""
        return self.offers[0] if self.offers else None

    def best_by_location(self) -> dict[str, Offer]:
        """Return the best offer at each location, locations in name order."""
        best: dict[str, Offer] = {}
        for offer in self.offers:
            best.setdefault(offer.rental.location, offer)
        return dict(sorted(best.items()))

    def to_json(self, offline: list[str] | None = None) -> dict[str, Any]:
        """Return the round as the documented JSON document."""
        doc: dict[str, Any] = {
            "round": self.number,
            "expected": self.expected,
            "elapsed_ms": round(self.elapsed_ms, 3),
            "rentals": [
                {
                    "name": reply.name,
                    "location": reply.location,
                    "api_url": reply.api_url,
                    "cars": [self._car_json(car) for car in reply.cars],
                }
                for reply in self.replies
            ],
            "missing": self.missing,
            "offline": offline or [],
            "best_offer": self._offer_json(self.best_offer()),
            "best_by_location": {
                location: self._offer_json(offer)
                for location, offer in self.best_by_location().items()
            },
            "filters": self.filters.to_json(),
        }
        if self.days is not None:
            doc["days"] = self.days
        return doc

    def _offer_json(self, offer: Offer | None) -> dict[str, Any] | None:
        if offer is None:
            return None
        doc = {
            "rental": offer.rental.name,
            "location": offer.rental.location,
            "car": self._car_json(offer.car),
            "daily_rate": money(offer.car.daily_rate),
        }
        if self.days is not None:
            doc["total"] = money(self.total(offer.car))
        return doc

    def _car_json(self, car: Car) -> dict[str, Any]:
        doc = {
            "id": car.id,
            "year": car.year,
            "make": car.make,
            "model": car.model,
            "daily_rate": money(car.daily_rate),
        }
        if self.days is not None:
            doc["total"] = money(self.total(car))
        return doc
