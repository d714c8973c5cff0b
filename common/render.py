"""Show a round's result to people, as rich tables, or to programs, as JSON."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TextIO

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from common.consolidate import Offer, RoundResult, money
from common.monitor import Monitor

__all__ = ["BEST_MARK", "monitor_view", "print_json", "round_view", "waiting_message"]

# The best offer is marked in words as well as in colour, so it survives
# NO_COLOR, a pipe to a file and CI logs.
BEST_MARK = "★ best offer"
BEST_STYLE = "bold green"
OFFLINE_STYLE = "bold red"


def waiting_message(answered: list[str], expected: int) -> Text:
    """Return the status line shown while a round is open."""
    text = f"waiting for rental services: {len(answered)}/{expected} answered"
    # Rental names come from the network: Text keeps them from being markup.
    return Text(f"{text}: {', '.join(answered)}" if answered else text)


def round_view(result: RoundResult, *, timeout_s: float, top: int | None) -> Group:
    """Return the cars table, the best offers and the totals of one round."""
    offers = result.offers
    shown = offers[:top] if top else offers
    parts: list[RenderableType] = []
    if shown:
        parts.append(_offers_table(result, shown, len(offers)))
    best = result.best_offer()
    if best is None:
        parts.append(Text("No car is available."))
    else:
        parts.append(Text.assemble(("Best offer: ", "bold"), _describe(result, best)))
    by_location = result.best_by_location()
    if len(by_location) > 1:
        parts.append(_locations_table(result, by_location))
    answered = len(result.replies)
    parts.append(
        Text(
            f"{answered} of {result.expected} rentals answered, "
            f"{result.car_count} cars available, in {result.elapsed_ms:.0f} ms"
        )
    )
    if result.missing:
        parts.append(
            Text(
                f"{result.missing} expected rental(s) did not answer within "
                f"{timeout_s:g} s",
                style=OFFLINE_STYLE,
            )
        )
    return Group(*parts)


def monitor_view(
    monitor: Monitor, result: RoundResult, *, timeout_s: float, top: int | None
) -> Group:
    """Return the watch-mode screen: every rental's state, then the round."""
    table = Table(title="Rentals", title_justify="left")
    for header in ("Rental", "Location", "Status", "Cars", "Cheapest car"):
        table.add_column(header, overflow="fold")
    table.add_column("Last answer", no_wrap=True)
    for status in monitor.statuses():
        cheapest = status.cheapest
        table.add_row(
            Text(status.name),
            Text(status.location),
            Text("online", style="green")
            if status.online
            else Text("OFFLINE", style=OFFLINE_STYLE),
            # An offline rental's cars are not on offer: no stale figures.
            str(status.cars) if status.online else "-",
            Text(f"{cheapest.car.title}, R$ {money(cheapest.car.daily_rate)}")
            if cheapest and status.online
            else "-",
            _clock(status.last_seen),
        )
    return Group(table, round_view(result, timeout_s=timeout_s, top=top))


def print_json(result: RoundResult, out: TextIO, offline: list[str]) -> None:
    """Write the round as one JSON document on a line of its own, flushed."""
    out.write(json.dumps(result.to_json(offline), ensure_ascii=False) + "\n")
    out.flush()


def _offers_table(result: RoundResult, shown: list[Offer], total: int) -> Table:
    title = f"Available sports cars (round {result.number})"
    table = Table(title=title, caption=_caption(result, len(shown), total))
    table.add_column("Rental", overflow="fold")
    table.add_column("Location", overflow="fold")
    table.add_column("Car", overflow="fold")
    table.add_column("Daily rate (R$)", justify="right", no_wrap=True)
    if result.days is not None:
        table.add_column(f"Total, {result.days} days (R$)", justify="right")
    table.add_column("", no_wrap=True)
    for rank, offer in enumerate(shown):
        is_best = rank == 0  # offers come cheapest first, best offer first
        prices = [money(offer.car.daily_rate)]
        if result.days is not None:
            prices.append(money(result.total(offer.car)))
        # Texts from the network go in as Text, never as rich markup.
        table.add_row(
            Text(offer.rental.name),
            Text(offer.rental.location),
            Text(offer.car.title),
            *prices,
            BEST_MARK if is_best else "",
            style=BEST_STYLE if is_best else None,
        )
    return table


def _locations_table(result: RoundResult, best: dict[str, Offer]) -> Table:
    table = Table(title="Best offer per location", title_justify="left")
    table.add_column("Location", overflow="fold")
    table.add_column("Best offer", overflow="fold")
    for location, offer in best.items():
        table.add_row(Text(location), _describe(result, offer))
    return table


def _describe(result: RoundResult, offer: Offer) -> Text:
    price = f"R$ {money(offer.car.daily_rate)}/day"
    if result.days is not None:
        price += f" (R$ {money(result.total(offer.car))} for {result.days} days)"
    return Text(
        f"{offer.car.title} at {price} from {offer.rental.name} "
        f"({offer.rental.location})",
        style=BEST_STYLE,
    )


def _caption(result: RoundResult, shown: int, total: int) -> Text | None:
    notes = [f"{key}: {value}" for key, value in result.filters.to_json().items()]
    if shown < total:
        notes.append(f"showing the {shown} cheapest of {total} cars")
    # A Text, not a str: filter values are the user's words, not markup.
    return Text("; ".join(notes)) if notes else None


def _clock(moment: datetime) -> str:
    return moment.astimezone().strftime("%H:%M:%S")
