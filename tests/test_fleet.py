"""Fleet files: the built-in ones, every kind of mistake, and churn."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

from common.cars import available, utc_now
from common.fleet import FLEETS, Churn, FleetError, load_fleet

GOOD = {
    "name": "Locadora T - Teste",
    "location": "Centro",
    "api_url": "http://t",
    "cars": [
        {"id": 1, "year": 2024, "make": "BMW", "model": "M4", "daily_rate": "1800.00"}
    ],
}


def write(tmp_path, data) -> Path:
    path = tmp_path / "fleet.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def with_car(**changes) -> dict:
    car = {**GOOD["cars"][0], **changes}
    return {**GOOD, "cars": [{k: v for k, v in car.items() if v is not None}]}


def test_every_built_in_fleet_loads():
    names = {load_fleet(path, utc_now()).name for path in FLEETS.glob("*.json")}

    assert {"Locadora A - Centro", "Locadora B - Aeroporto"} <= names


def test_rented_for_days_rents_the_car_from_the_start():
    now = utc_now()
    rental = load_fleet(FLEETS / "locadora_a.json", now)
    (huracan,) = [car for car in rental.cars if car.model == "Huracan"]

    assert huracan.rented_until == now + timedelta(days=3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "not JSON"),
        ([], "the fleet must be a JSON object"),
        ({k: v for k, v in GOOD.items() if k != "name"}, "name: missing"),
        ({**GOOD, "extra": 1}, "extra: unknown field"),
        ({**GOOD, "name": ""}, "name is empty"),
        ({**GOOD, "cars": []}, "cars: must be a list"),
        (with_car(daily_rate=1800), "cars[0]: daily_rate: must be an amount"),
        (with_car(daily_rate="lots"), "cars[0]: daily_rate: must be an amount"),
        (with_car(daily_rate="-5.00"), "cars[0]: daily_rate: must be an amount"),
        (with_car(daily_rate="0.00"), "cars[0]: daily rate '0.00' is not an amount"),
        (with_car(year=1700), "cars[0]: car year 1700 is not plausible"),
        (with_car(model=None), "cars[0]: model: missing"),
        (with_car(color="red"), "cars[0]: color: unknown field"),
        (with_car(rented_for_days=-1), "cars[0]: rented_for_days: must be 0 to 365"),
        ({**GOOD, "cars": GOOD["cars"] * 2}, "cars[1].id: 1 is used twice"),
    ],
)
def test_a_bad_fleet_file_names_the_file_and_the_field(tmp_path, data, message):
    path = write(tmp_path, data)

    with pytest.raises(FleetError) as caught:
        load_fleet(path, utc_now())
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


RATE, YEAR, ID = '"daily_rate": "1800.00"', '"year": 2024', '"id": 1'


@pytest.mark.parametrize(
    ("field", "raw", "message"),
    [
        (RATE, '"daily_rate": 1800.10', "cars[0]: daily_rate: must be an amount"),
        (RATE, '"daily_rate": "1E+3"', "cars[0]: daily_rate: must be an amount"),
        (RATE, '"daily_rate": "1_800.00"', "cars[0]: daily_rate: must be an amount"),
        (RATE, '"daily_rate": " 1800"', "cars[0]: daily_rate: must be an amount"),
        (RATE, '"daily_rate": "1800.000"', "cars[0]: daily_rate: must be an amount"),
        (RATE, '"daily_rate": "\\u0661\\u0662"', "cars[0]: daily_rate: must be"),
        (YEAR, '"year": 2024.0', "cars[0]: car year '2024.0' is not plausible"),
        (RATE, '"daily_rate": "1.00", "daily_rate": "2.00"', "appears twice"),
        (ID, '"id": ' + "9" * 5000, "not a fleet"),
    ],
)
def test_amounts_and_numbers_are_strict(tmp_path, field, raw, message):
    text = json.dumps(with_car())
    assert field in text
    path = write(tmp_path, text.replace(field, raw, 1))

    with pytest.raises(FleetError, match=re.escape(message)):
        load_fleet(path, utc_now())


def test_deep_nesting_is_a_clear_error(tmp_path):
    with pytest.raises(FleetError, match="not a fleet"):
        load_fleet(write(tmp_path, "[" * 100_000), utc_now())


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FleetError, match="cannot read"):
        load_fleet(tmp_path / "nowhere.json", utc_now())


def churn_events(seed: int, steps: int) -> list[str]:
    now = utc_now()
    rental = load_fleet(FLEETS / "locadora_b.json", now)
    churn = Churn(seed)
    events = []
    for _ in range(steps):
        rental, event = churn.step(rental, now)
        events.append(event)
    return events


def test_churn_with_a_seed_repeats_and_another_seed_differs():
    assert churn_events(7, 30) == churn_events(7, 30)
    assert churn_events(7, 30) != churn_events(8, 30)


def test_churn_rents_out_available_cars_and_returns_rented_ones():
    now = utc_now()
    rental = load_fleet(FLEETS / "locadora_b.json", now)
    churn = Churn(1)
    for _ in range(50):
        before = len(available(rental.cars, now))
        rental, event = churn.step(rental, now)
        after = len(available(rental.cars, now))
        assert after == before + (1 if event.startswith("returned") else -1)
