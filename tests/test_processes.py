"""The real aggregator, rental services and demo, run as processes."""

from __future__ import annotations

import json
import signal

import pytest

from common.render import BEST_MARK
from tests.procs import ANY_PORT, start_rental, start_rentals

EXPECTED_BEST = {
    "rental": "Locadora B - Aeroporto",
    "location": "Aeroporto",
    "car": {
        "id": 5,
        "year": 2024,
        "make": "BMW",
        "model": "M4 Competition",
        "daily_rate": "1800.00",
    },
    "daily_rate": "1800.00",
}


def test_rentals_joining_late_are_still_heard(aggregator, spawn):
    agg, pub, rep = aggregator("--json", "--timeout", "30", "-v")
    # Let the round run for eight broadcasts (about 2 s) before any rental exists.
    agg.wait_for(r"broadcast QTY", count=8)
    start_rentals(spawn, pub, rep, "--once")

    assert agg.wait() == 0
    result = json.loads(agg.stdout)
    assert result["missing"] == 0
    assert [r["name"] for r in result["rentals"]] == [
        "Locadora A - Centro",
        "Locadora B - Aeroporto",
    ]


def test_rentals_started_first_answer_when_the_aggregator_appears(spawn, free_endpoint):
    pub, rep = free_endpoint(), free_endpoint()
    rentals = start_rentals(spawn, pub, rep)
    for rental in rentals:
        rental.wait_for(r"waiting for QTY")

    agg = spawn(
        "aggregator.py", "--pub", pub, "--rep", rep, "--json", "--timeout", "30"
    )

    assert agg.wait() == 0, agg.stderr
    assert json.loads(agg.stdout)["missing"] == 0
    # Long-running rentals are still there for the next round.
    assert all(rental.popen.poll() is None for rental in rentals)


def test_json_lists_exactly_the_available_cars_and_the_best_offer(aggregator, spawn):
    agg, pub, rep = aggregator("--json", "--timeout", "30")
    rentals = start_rentals(spawn, pub, rep, "--once")

    assert agg.wait() == 0
    result = json.loads(agg.stdout)
    cars = {
        (rental["name"], car["make"], car["model"], car["daily_rate"])
        for rental in result["rentals"]
        for car in rental["cars"]
    }
    assert cars == {
        ("Locadora A - Centro", "Ferrari", "F8 Tributo", "3500.00"),
        ("Locadora A - Centro", "McLaren", "720S", "3200.00"),
        ("Locadora A - Centro", "Porsche", "911 Turbo S", "2800.00"),
        ("Locadora B - Aeroporto", "Aston Martin", "DB11", "3800.00"),
        ("Locadora B - Aeroporto", "Nissan", "GT-R", "2200.00"),
        ("Locadora B - Aeroporto", "Audi", "R8 V10", "3300.00"),
        ("Locadora B - Aeroporto", "BMW", "M4 Competition", "1800.00"),
    }
    assert result["best_offer"] == EXPECTED_BEST
    assert result["round"] == 1 and result["expected"] == 2
    for rental in rentals:
        assert rental.wait() == 0


def test_one_rental_missing_ends_at_the_deadline(aggregator, spawn):
    agg, pub, rep = aggregator("--json", "--timeout", "2")
    start_rental(spawn, "rental_service.py", pub, rep)

    assert agg.wait() == 1
    result = json.loads(agg.stdout)
    assert result["missing"] == 1
    assert [r["name"] for r in result["rentals"]] == ["Locadora A - Centro"]
    assert result["best_offer"]["car"]["model"] == "911 Turbo S"


def test_table_marks_the_best_offer_in_text(aggregator, spawn):
    agg, pub, rep = aggregator("--timeout", "30")
    start_rentals(spawn, pub, rep, "--once")

    assert agg.wait() == 0
    best_rows = [line for line in agg.stdout.splitlines() if BEST_MARK in line]
    assert len(best_rows) == 1
    assert "BMW M4 Competition" in best_rows[0] and "1800.00" in best_rows[0]
    assert "2 of 2 rentals answered, 7 cars available" in agg.stdout


def test_rentals_use_their_own_name_and_location(aggregator, spawn):
    agg, pub, rep = aggregator("--json", "--expect", "1", "--timeout", "30")
    start_rental(
        spawn,
        "rental_service2.py",
        pub,
        rep,
        "--once",
        "--name",
        "Locadora C - Galeão",
        "--location",
        "Galeão",
    )

    assert agg.wait() == 0
    (rental,) = json.loads(agg.stdout)["rentals"]
    assert (rental["name"], rental["location"]) == ("Locadora C - Galeão", "Galeão")


def test_endpoints_come_from_the_environment(aggregator, spawn):
    agg, pub, rep = aggregator("--json", "--expect", "1", "--timeout", "30")
    rental = spawn(
        "rental_service.py", "--once", env={"CARRENTAL_PUB": pub, "CARRENTAL_REP": rep}
    )

    assert agg.wait() == 0
    assert rental.wait() == 0


def test_demo_runs_end_to_end(spawn):
    demo = spawn("demo.py", "--pub", ANY_PORT, "--rep", ANY_PORT, "--timeout", "30")

    assert demo.wait(60) == 0, demo.stderr
    best_rows = [line for line in demo.stdout.splitlines() if BEST_MARK in line]
    assert len(best_rows) == 1 and "BMW M4 Competition" in best_rows[0]
    for name in ("aggregator", "locadora A", "locadora B"):
        assert f"{name:<12} | " in demo.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["aggregator.py", "--pub", "tcp:/nowhere"], "is not an endpoint"),
        (["aggregator.py", "--expect", "0"], "not a whole number above 0"),
        (["aggregator.py", "--timeout", "-1"], "not a number of seconds above 0"),
        (["aggregator.py", "--bogus"], "unrecognized arguments"),
        (["aggregator.py", "-v", "-q"], "not allowed with argument"),
        (["rental_service.py", "--rep", "http://x"], "is not an endpoint"),
        (["rental_service2.py", "--name", " "], "--name is empty"),
        (["rental_service.py", "--pub", "tcp://*:5555"], "'*' is for binding"),
        (["aggregator.py", "--pub", "tcp://127.0.0.1:70000"], "outside 1-65535"),
        (["aggregator.py", "--pub", "tcp://no.such.host.invalid:5555"], "cannot bind"),
        (["aggregator.py", "--max-rate", "cheap"], "is not an amount"),
        (["aggregator.py", "--days", "0"], "not a whole number above 0"),
        (["aggregator.py", "--watch", "nan"], "not a number of seconds"),
        (["rental_service.py", "--fleet", "nowhere.json"], "nowhere.json: cannot read"),
        (["rental_service.py", "--fleet", "README.md"], "README.md: not JSON"),
        (["rental_service.py", "--churn", "-1"], "not a number of seconds"),
    ],
)
def test_bad_options_give_one_line_and_exit_2(spawn, args, message):
    proc = spawn(*args)

    assert proc.wait() == 2
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_bad_endpoint_in_the_environment_names_the_variable(spawn):
    proc = spawn("rental_service.py", env={"CARRENTAL_PUB": "localhost:5555"})

    assert proc.wait() == 2
    assert "$CARRENTAL_PUB" in proc.stderr


def test_address_in_use_is_a_one_line_error(aggregator, spawn):
    _, pub, rep = aggregator("--timeout", "30")
    second = spawn("aggregator.py", "--pub", pub, "--rep", rep)

    assert second.wait() == 2
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert pub in lines[0] and "Address already in use" in lines[0]


def test_sigint_stops_the_aggregator_with_130(aggregator):
    agg, _, _ = aggregator("--timeout", "30")
    agg.signal(signal.SIGINT)

    assert agg.wait(5) == 130
    assert "Traceback" not in agg.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_a_waiting_rental_with_0(spawn, free_endpoint, signum):
    rental = spawn("rental_service.py", "--pub", free_endpoint())
    rental.wait_for(r"waiting for QTY")
    rental.signal(signum)

    assert rental.wait(5) == 0
    assert "Traceback" not in rental.stderr
