"""A rental service: hear QTY on SUB, answer with its available cars over REQ."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime

import zmq
from zmq.utils.monitor import recv_monitor_message

from common.cars import Rental, available, utc_now
from common.cli import open_socket
from common.fleet import Churn
from common.protocol import ACK, QTY, encode_reply, parse_query

__all__ = ["RentalService"]

logger = logging.getLogger(__name__)

# Every wait is bounded so that a signal is handled within this time.
POLL_INTERVAL_MS = 200
# How long to wait for the aggregator's ACK before giving the REQ socket up.
ACK_TIMEOUT_MS = 2000
HANDSHAKE_FAILURES = (
    zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)
# Broadcasts and answers are a few words: anything larger is dropped by libzmq.
MAX_ANSWER_BYTES = 4096
# How many answered round ids to remember, to answer each round once.
REMEMBERED_ROUNDS = 256


class RentalService:
    """Answer every QTY broadcast with this rental's available cars."""

    def __init__(
        self,
        rental: Rental,
        pub_endpoint: str,
        rep_endpoint: str,
        *,
        clock: Callable[[], datetime] = utc_now,
        churn: Churn | None = None,
        churn_interval_s: float = 0.0,
        curve: dict[str, object] | None = None,
    ) -> None:
        self.curve = curve or {}
        self.rental = rental
        self.churn = churn
        self.churn_interval_s = churn_interval_s
        self.pub_endpoint = pub_endpoint
        self.rep_endpoint = rep_endpoint
        self.clock = clock
        self._answered: deque[str] = deque(maxlen=REMEMBERED_ROUNDS)
        self._told: set[int] = set()  # handshake failures already explained

    def serve(self, *, once: bool = False) -> None:
        """Answer rounds until interrupted, or after the first one with ``once``."""
        ctx = zmq.Context()
        try:
            sub = open_socket(
                ctx,
                zmq.SUB,
                self.pub_endpoint,
                bind=False,
                maxmsgsize=MAX_ANSWER_BYTES,
                **self.curve,
            )
            sub.subscribe(QTY)
            # Handshake failures are silent in ZeroMQ; a monitor makes them seen.
            monitor = sub.get_monitor_socket(HANDSHAKE_FAILURES)
            req = self._open_req(ctx)
            logger.info(
                "%s waiting for QTY on %s, replying to %s",
                self.rental.name,
                self.pub_endpoint,
                self.rep_endpoint,
            )
            next_churn = time.monotonic() + self.churn_interval_s
            while True:
                if self.churn is not None and time.monotonic() >= next_churn:
                    self.rental, event = self.churn.step(self.rental, self.clock())
                    logger.info("churn: %s", event)
                    next_churn += self.churn_interval_s
                round_id = self._next_round(sub, monitor)
                if round_id is None:
                    continue
                if self._reply(req, round_id):
                    if once:
                        return
                else:
                    # Lazy Pirate: a REQ socket that sent and got no answer
                    # cannot send again, so it is closed and opened anew.
                    req.close()
                    req = self._open_req(ctx)
        finally:
            ctx.destroy(linger=0)

    def _open_req(self, ctx: zmq.Context) -> zmq.Socket:
        return open_socket(
            ctx,
            zmq.REQ,
            self.rep_endpoint,
            bind=False,
            maxmsgsize=MAX_ANSWER_BYTES,
            **self.curve,
        )

    def _next_round(self, sub: zmq.Socket, monitor: zmq.Socket) -> str | None:
        """Wait briefly for broadcasts; return the newest round not yet answered.

        All queued broadcasts are read at once, so a rental that was paused
        answers only the latest round instead of working through stale ones.
        """
        poller = zmq.Poller()
        poller.register(sub, zmq.POLLIN)
        poller.register(monitor, zmq.POLLIN)
        ready = dict(poller.poll(POLL_INTERVAL_MS))
        if monitor in ready:
            self._explain(recv_monitor_message(monitor)["event"])
        if sub not in ready:
            return None
        newest = None
        while sub.poll(0, zmq.POLLIN):
            frames = sub.recv_multipart()
            round_id = parse_query(frames)
            if round_id is None:
                logger.debug("ignored broadcast %r", [f[:20] for f in frames[:4]])
                continue
            newest = round_id
        if newest is None or newest in self._answered:
            return None
        logger.info("received QTY round=%s", newest)
        return newest

    def _explain(self, event: int) -> None:
        """Say once why the secure handshake with the aggregator fails."""
        if event in self._told:
            return
        self._told.add(event)
        if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            reason = "refused this rental's key: is it in the aggregator's allowed/?"
        elif self.curve:
            reason = "failed: is --server-key the aggregator's aggregator.key?"
        else:
            reason = "failed: if the aggregator uses --keys, pass --key, --server-key"
        logger.warning("the handshake with %s %s", self.pub_endpoint, reason)

    def _reply(self, req: zmq.Socket, round_id: str) -> bool:
        """Send this rental's cars for ``round_id``; return False if no answer came."""
        cars = available(self.rental.cars, self.clock())
        rental = self.rental
        req.send_multipart(
            encode_reply(round_id, rental.name, rental.location, rental.api_url, cars)
        )
        logger.info("sent %d cars round=%s", len(cars), round_id)
        if not req.poll(ACK_TIMEOUT_MS, zmq.POLLIN):
            logger.warning(
                "no answer from %s within %d ms: reopening the REQ socket",
                self.rep_endpoint,
                ACK_TIMEOUT_MS,
            )
            return False
        answer = req.recv_multipart()
        self._answered.append(round_id)
        if answer[:1] == [ACK]:
            logger.info("ACK round=%s", round_id)
        else:
            logger.warning(
                "aggregator refused the reply: %r", [a[:200] for a in answer[:2]]
            )
        return True
