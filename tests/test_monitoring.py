"""Watch mode, filters and fleets, on the real processes."""

from __future__ import annotations

import json
import signal

import pytest

from tests.procs import start_rental, start_rentals

A, B, C = "Locadora A - Centro", "Locadora B - Aeroporto", "Locadora C - Galeão"


def test_watch_shows_a_stopped_rental_offline_then_online_again(aggregator, spawn):
    agg, pub, rep = aggregator("--watch", "0.5", "--json")
    first_a, first_b = start_rentals(spawn, pub, rep)

    full = r'"missing": 0, "offline": \[\]'  # both rentals answered the round
    both = agg.wait_for(full, stream="stdout")
    first_b.signal(signal.SIGKILL)
    gone = agg.wait_for(rf'"offline": \["{B}"\]', stream="stdout")
    start_rental(spawn, "rental_service2.py", pub, rep)
    back = agg.wait_for(full, stream="stdout", count=2)

    rounds = [json.loads(line) for line in agg.stdout.splitlines()]
    assert [r["round"] for r in rounds] == list(range(1, len(rounds) + 1))
    for match, names in ((both, [A, B]), (gone, [A]), (back, [A, B])):
        doc = json.loads(match.string)
        assert [r["name"] for r in doc["rentals"]] == names
    assert json.loads(gone.string)["missing"] == 1
    agg.signal(signal.SIGINT)
    assert agg.wait() == 130


def test_watch_waits_for_more_rentals_than_expected(aggregator, spawn):
    agg, pub, rep = aggregator("--watch", "0.5", "--json", "--expect", "1")
    start_rentals(spawn, pub, rep)
    start_rental(
        spawn, "rental_service.py", pub, rep, "--fleet", "fleets/locadora_c.json"
    )

    line = agg.wait_for(r'"expected": 3, .*"missing": 0', stream="stdout")
    assert [r["name"] for r in json.loads(line.string)["rentals"]] == [A, B, C]


@pytest.fixture
def three_rentals(aggregator, spawn):
    """Return a function running one round over three rentals with options."""

    def run(*options: str) -> dict:
        agg, pub, rep = aggregator("--json", "--expect", "3", *options)
        start_rentals(spawn, pub, rep, "--once")
        start_rental(
            spawn,
            "rental_service.py",
            pub,
            rep,
            "--once",
            "--fleet",
            "fleets/locadora_c.json",
        )
        assert agg.wait() == 0, agg.stderr
        return json.loads(agg.stdout)

    return run


def cars_of(doc: dict) -> set[tuple[str, str]]:
    return {(r["name"], c["model"]) for r in doc["rentals"] for c in r["cars"]}


def test_location_filter_ignores_case_and_accents(three_rentals):
    doc = three_rentals("--location", "GALEAO")

    assert {name for name, _ in cars_of(doc)} == {C}
    assert doc["best_offer"]["car"]["model"] == "718 Cayman GT4"
    assert list(doc["best_by_location"]) == ["Aeroporto Galeão"]
    assert doc["filters"] == {"location": "GALEAO"}


def test_location_filter_matches_every_location_containing_it(three_rentals):
    doc = three_rentals("--location", "aeroporto")

    assert list(doc["best_by_location"]) == ["Aeroporto", "Aeroporto Galeão"]
    assert doc["best_offer"]["car"]["model"] == "M4 Competition"


def test_make_and_max_rate_filters(three_rentals):
    doc = three_rentals("--make", "porsche", "--max-rate", "2800")

    assert cars_of(doc) == {(A, "911 Turbo S"), (C, "718 Cayman GT4")}
    assert doc["best_offer"]["daily_rate"] == "2100.00"


def test_days_adds_totals_and_prices_the_best_offer(three_rentals):
    doc = three_rentals("--days", "3")

    assert doc["days"] == 3
    assert doc["best_offer"]["total"] == "5400.00"
    totals = {c["model"]: c["total"] for r in doc["rentals"] for c in r["cars"]}
    assert totals["Roma"] == "10200.00"


def test_best_offer_per_location(three_rentals):
    doc = three_rentals()

    best = {
        loc: offer["car"]["model"] for loc, offer in doc["best_by_location"].items()
    }
    assert best == {
        "Aeroporto": "M4 Competition",
        "Aeroporto Galeão": "718 Cayman GT4",
        "Centro": "911 Turbo S",
    }


def test_top_limits_the_table_but_not_the_totals(aggregator, spawn):
    agg, pub, rep = aggregator("--top", "2", "--timeout", "30")
    start_rentals(spawn, pub, rep, "--once")

    assert agg.wait() == 0
    assert "showing the 2 cheapest of 7 cars" in agg.stdout
    assert "7 cars available" in agg.stdout
    # The two cheapest are listed; the McLaren, fourth cheapest and no
    # location's best offer, is not.
    assert "Nissan GT-R" in agg.stdout and "McLaren" not in agg.stdout


def test_churn_with_a_seed_gives_the_same_sequence_twice(spawn, free_endpoint):
    def events() -> list[str]:
        rental = spawn(
            "rental_service2.py",
            "--pub",
            free_endpoint(),
            "--churn",
            "0.05",
            "--seed",
            "42",
        )
        rental.wait_for(r"churn: ", count=6)
        rental.signal(signal.SIGINT)
        rental.wait()
        return [m[1] for m in rental.matches(r"churn: (.*)")][:6]

    assert events() == events()
