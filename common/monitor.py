"""What watch mode remembers between rounds: who answered, when, with what."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from common.consolidate import Offer, RoundResult

__all__ = ["Monitor", "RentalStatus"]


@dataclass
class RentalStatus:
    """One rental as last seen by the aggregator."""

    name: str
    location: str
    cars: int
    cheapest: Offer | None
    last_seen: datetime
    online: bool = True


class Monitor:
    """Track every rental seen in any round; those missing from a round are offline."""

    def __init__(self) -> None:
        self._rentals: dict[str, RentalStatus] = {}

    def record(self, result: RoundResult, now: datetime) -> None:
        """Update every rental from one round's (filtered) result."""
        for status in self._rentals.values():
            status.online = False
        cheapest: dict[str, Offer] = {}
        for offer in result.offers:  # cheapest first
            cheapest.setdefault(offer.rental.name, offer)
        for reply in result.replies:
            self._rentals[reply.name] = RentalStatus(
                name=reply.name,
                location=reply.location,
                cars=len(reply.cars),
                cheapest=cheapest.get(reply.name),
                last_seen=now,
            )

    def statuses(self) -> list[RentalStatus]:
        """Return every rental ever seen, by name."""
        return [self._rentals[name] for name in sorted(self._rentals)]

    def offline(self) -> list[str]:
        """Return the names of rentals seen before that missed the last round."""
        return [s.name for s in self.statuses() if not s.online]
