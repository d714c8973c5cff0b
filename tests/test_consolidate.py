"""Ordering, best offer and the JSON document of a round."""

from datetime import datetime, timezone
from decimal import Decimal

from common.cars import Car
from common.consolidate import Filters, RoundResult, fold
from common.monitor import Monitor
from common.protocol import Reply


def car(car_id: int, rate: str, model: str = "Model") -> Car:
    return Car(car_id, 2024, "Make", model, Decimal(rate))


def result(*replies: Reply, expected: int = 2) -> RoundResult:
    return RoundResult.build(
        number=1,
        round_id="r-1",
        expected=expected,
        elapsed_ms=1.0,
        replies=list(replies),
    )


def reply(name: str, *cars: Car) -> Reply:
    return Reply("r-1", name, f"{name} place", f"http://{name}", list(cars))


def test_best_offer_is_the_lowest_daily_rate():
    best = result(
        reply("B", car(1, "900.00")), reply("A", car(1, "899.99"))
    ).best_offer()

    assert best is not None
    assert (best.rental.name, best.car.daily_rate) == ("A", Decimal("899.99"))


def test_a_tie_goes_to_the_rental_name_then_the_car_id():
    tie = result(
        reply("Zeta", car(1, "500.00")),
        reply("Alpha", car(9, "500.00"), car(4, "500.00")),
    ).best_offer()

    assert tie is not None
    assert (tie.rental.name, tie.car.id) == ("Alpha", 4)


def test_no_cars_means_no_best_offer():
    round_result = result(reply("A"))

    assert round_result.best_offer() is None
    assert round_result.to_json()["best_offer"] is None


def test_json_sorts_rentals_by_name_and_cars_by_rate_then_id():
    doc = result(
        reply("B", car(2, "10"), car(1, "10"), car(3, "5.5")),
        reply("A", car(7, "1")),
        expected=3,
    ).to_json()

    assert [r["name"] for r in doc["rentals"]] == ["A", "B"]
    assert [c["id"] for c in doc["rentals"][1]["cars"]] == [3, 1, 2]
    assert [c["daily_rate"] for c in doc["rentals"][1]["cars"]] == [
        "5.50",
        "10.00",
        "10.00",
    ]
    assert doc["missing"] == 1
    assert doc["best_offer"]["daily_rate"] == "1.00"
    assert doc["best_offer"]["rental"] == "A"


def test_fold_drops_case_and_accents():
    assert fold("Aeroporto Galeão") == fold("AEROPORTO GALEAO") == "aeroporto galeao"


def test_filters_keep_only_matching_cars_and_every_rental():
    narrowed = result(
        reply("A", car(1, "10.00", "One"), car(2, "99.00", "Two")),
        reply("B", car(3, "5.00")),
    ).narrowed(Filters(location="a PLACE", max_rate=Decimal("50")), days=2)

    assert [r.name for r in narrowed.replies] == ["A", "B"]
    assert [c.id for c in narrowed.replies[0].cars] == [1]
    assert narrowed.replies[1].cars == []
    doc = narrowed.to_json()
    assert doc["filters"] == {"location": "a PLACE", "max_rate": "50.00"}
    assert doc["best_offer"]["total"] == "20.00"


def test_the_monitor_marks_rentals_that_missed_the_last_round_offline():
    monitor = Monitor()
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    monitor.record(result(reply("A", car(1, "10.00")), reply("B")), now)
    monitor.record(result(reply("A", car(1, "12.00"))), now)

    assert monitor.offline() == ["B"]
    (a, b) = monitor.statuses()
    assert a.online and a.cheapest is not None
    assert a.cheapest.car.daily_rate == Decimal("12.00")
    assert not b.online and b.cheapest is None
