"""Cars, the availability rule and the two built-in rental fleets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

__all__ = ["Car", "Rental", "available", "fleet_a", "fleet_b", "utc_now"]


@dataclass(frozen=True)
class Car:
    """A sports car offered by one rental, with its daily rate in reais."""

    id: int
    year: int
    make: str
    model: str
    daily_rate: Decimal
    rented_until: datetime | None = None

    @property
    def title(self) -> str:
        """Return the car as people name it, e.g. "2024 BMW M4 Competition"."""
        return f"{self.year} {self.make} {self.model}"

    def is_available(self, now: datetime) -> bool:
        """Return True when the car is not rented or its rental has ended."""
        return self.rented_until is None or self.rented_until <= now


@dataclass(frozen=True)
class Rental:
    """A rental company's identity and the fleet it offers."""

    name: str
    location: str
    api_url: str
    cars: tuple[Car, ...]


def utc_now() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(timezone.utc)


def available(cars: tuple[Car, ...] | list[Car], now: datetime) -> list[Car]:
    """Return the cars that can be rented at ``now``."""
    return [car for car in cars if car.is_available(now)]


def fleet_a(now: datetime) -> Rental:
    """Return Locadora A - Centro; its Huracan was rented at ``now`` for 3 days."""
    return Rental(
        name="Locadora A - Centro",
        location="Centro",
        api_url="http://api.locadora-a.com.br/rental",
        cars=(
            Car(1, 2023, "Ferrari", "F8 Tributo", Decimal("3500.00")),
            Car(2, 2024, "McLaren", "720S", Decimal("3200.00")),
            Car(
                3,
                2022,
                "Lamborghini",
                "Huracan",
                Decimal("4000.00"),
                rented_until=now + timedelta(days=3),
            ),
            Car(4, 2023, "Porsche", "911 Turbo S", Decimal("2800.00")),
        ),
    )


def fleet_b(now: datetime) -> Rental:
    """Return Locadora B - Aeroporto; its Corvette was rented at ``now`` for 5 days."""
    return Rental(
        name="Locadora B - Aeroporto",
        location="Aeroporto",
        api_url="http://api.locadora-b.com.br/rental",
        cars=(
            Car(1, 2024, "Aston Martin", "DB11", Decimal("3800.00")),
            Car(
                2,
                2023,
                "Corvette",
                "C8 Stingray",
                Decimal("2500.00"),
                rented_until=now + timedelta(days=5),
            ),
            Car(3, 2022, "Nissan", "GT-R", Decimal("2200.00")),
            Car(4, 2023, "Audi", "R8 V10", Decimal("3300.00")),
            Car(5, 2024, "BMW", "M4 Competition", Decimal("1800.00")),
        ),
    )
