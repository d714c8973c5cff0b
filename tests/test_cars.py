"""The availability rule and the built-in fleets."""

from datetime import timedelta
from decimal import Decimal

from common.cars import Car, available, utc_now
from common.fleet import FLEETS, load_fleet


def test_a_car_is_available_when_not_rented_or_its_rental_ended():
    now = utc_now()
    free = Car(1, 2024, "BMW", "M4", Decimal("1800.00"))
    renting = Car(2, 2024, "BMW", "M4", Decimal("1800.00"), now + timedelta(hours=1))
    returned = Car(3, 2024, "BMW", "M4", Decimal("1800.00"), now - timedelta(hours=1))
    ends_now = Car(4, 2024, "BMW", "M4", Decimal("1800.00"), now)

    assert [car.id for car in available([free, renting, returned, ends_now], now)] == [
        1,
        3,
        4,
    ]


def test_rented_cars_come_back_when_their_days_are_over():
    start = utc_now()
    a = load_fleet(FLEETS / "locadora_a.json", start)
    b = load_fleet(FLEETS / "locadora_b.json", start)

    assert len(available(a.cars, start)) == 3
    assert len(available(b.cars, start)) == 4
    assert len(available(a.cars, start + timedelta(days=3))) == 4
    assert len(available(b.cars, start + timedelta(days=4))) == 4
    assert len(available(b.cars, start + timedelta(days=5))) == 5


def test_money_is_decimal():
    for path in FLEETS.glob("*.json"):
        rental = load_fleet(path, utc_now())
        assert all(type(car.daily_rate) is Decimal for car in rental.cars)
