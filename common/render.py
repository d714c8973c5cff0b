"""Show a round's result to people, as a rich table, or to programs, as JSON."""

from __future__ import annotations

import json
from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from common.consolidate import RoundResult, money

__all__ = ["BEST_MARK", "print_json", "print_table", "waiting_message"]

# The best offer is marked in words as well as in colour, so it survives
# NO_COLOR, a pipe to a file and CI logs.
BEST_MARK = "★ best offer"
BEST_STYLE = "bold green"


def waiting_message(answered: list[str], expected: int) -> Text:
    """Return the status line shown while a round is open."""
    text = f"waiting for rental services: {len(answered)}/{expected} answered"
    # Rental names come from the network: Text keeps them from being markup.
    return Text(f"{text}: {', '.join(answered)}" if answered else text)


def print_table(console: Console, result: RoundResult, timeout_s: float) -> None:
    """Print every available car, the best offer highlighted, then the totals."""
    offers = result.offers()
    best = result.best_offer()
    table = Table(title=f"Available sports cars (round {result.number})")
    table.add_column("Rental", overflow="fold")
    table.add_column("Location", overflow="fold")
    table.add_column("Car", overflow="fold")
    table.add_column("Daily rate (R$)", justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)
    for rank, offer in enumerate(offers):
        is_best = rank == 0  # offers come cheapest first, best offer first
        # Texts from the network go in as Text, never as rich markup.
        table.add_row(
            Text(offer.rental.name),
            Text(offer.rental.location),
            Text(offer.car.title),
            money(offer.car.daily_rate),
            BEST_MARK if is_best else "",
            style=BEST_STYLE if is_best else None,
        )
    if offers:
        console.print(table)
    if best is None:
        console.print("No car is available.")
    else:
        line = Text("Best offer: ", style="bold")
        line.append(
            f"{best.car.title} at R$ {money(best.car.daily_rate)}/day from "
            f"{best.rental.name} ({best.rental.location})",
            style=BEST_STYLE,
        )
        console.print(line)
    answered = len(result.replies)
    console.print(
        f"{answered} of {result.expected} rentals answered, "
        f"{result.car_count} cars available, in {result.elapsed_ms:.0f} ms"
    )
    if result.missing:
        console.print(
            f"{result.missing} expected rental(s) did not answer within "
            f"{timeout_s:g} s",
            style="bold red",
        )


def print_json(result: RoundResult, out: TextIO) -> None:
    """Write the round as one JSON document on a line of its own."""
    out.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
    out.flush()
