"""The aggregator's side of a round: broadcast QTY, gather and acknowledge replies."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import zmq
from zmq.utils.monitor import recv_monitor_message

from common.cars import available, utc_now
from common.cli import SetupError, open_socket
from common.consolidate import RoundResult
from common.keys import ALLOWED, Gatekeeper, KeyFileError, server_options
from common.protocol import (
    ACK,
    ERR,
    MAX_MESSAGE_BYTES,
    REPLY_FRAMES,
    ProtocolError,
    Reply,
    RoundIds,
    decode_cars,
    decode_header,
    encode_query,
)

__all__ = ["Aggregator", "Progress"]

logger = logging.getLogger(__name__)

HANDSHAKE_FAILURES = (
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)
# While a round is open its QTY is sent again at this interval, so a rental
# that connects late (SUB sockets miss what was published before they joined)
# still hears it.
REBROADCAST_INTERVAL_S = 0.25

Progress = Callable[[list[str]], None]
"""Called with the names answered so far: when one answers, and at each re-broadcast."""


class Aggregator:
    """Bind PUB and REP, and run rounds of scatter-gather over them."""

    def __init__(
        self, pub_endpoint: str, rep_endpoint: str, *, keys: Path | None = None
    ) -> None:
        self.pub_endpoint = pub_endpoint
        self.rep_endpoint = rep_endpoint
        self.keys = keys
        self.round_ids = RoundIds()
        # Every rental name that ever answered, even too late for its round.
        self.seen: set[str] = set()
        # Under CURVE: the rental name each key (by file name) speaks for.
        self._speakers: dict[str, str] = {}
        self._ctx: zmq.Context | None = None
        self._pub: zmq.Socket | None = None
        self._rep: zmq.Socket | None = None
        self._gatekeeper: Gatekeeper | None = None
        self._poller = zmq.Poller()
        self._monitors: dict[zmq.Socket, str] = {}
        self._reported: set[str] = set()

    def __enter__(self) -> Aggregator:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Bind both sockets; raise SetupError naming a bad or busy endpoint."""
        if self._ctx is not None:
            return
        self._ctx = zmq.Context()
        try:
            curve = self._start_gatekeeper(self._ctx)
            self._pub = open_socket(
                self._ctx, zmq.PUB, self.pub_endpoint, bind=True, **curve
            )
            # The size limit is set before bind; libzmq drops the connection
            # of a peer whose message is larger, without an answer.
            self._rep = open_socket(
                self._ctx,
                zmq.REP,
                self.rep_endpoint,
                bind=True,
                maxmsgsize=MAX_MESSAGE_BYTES,
                **curve,
            )
        except BaseException:
            self.stop()
            raise
        self._poller = zmq.Poller()
        self._poller.register(self._rep, zmq.POLLIN)
        if self.keys is not None:
            # Peers without CURVE, or with the wrong server key, fail before
            # the ZAP handler sees a key; only a socket monitor tells.
            for sock in (self._pub, self._rep):
                monitor = sock.get_monitor_socket(HANDSHAKE_FAILURES)
                self._monitors[monitor] = _bound(sock)
                self._poller.register(monitor, zmq.POLLIN)
        logger.info(
            "bound PUB=%s REP=%s run=%s", *self.endpoints, self.round_ids.prefix
        )

    def _start_gatekeeper(self, ctx: zmq.Context) -> dict[str, object]:
        """With keys, admit only known rentals; return the CURVE socket options."""
        if self.keys is None:
            return {}
        try:
            options = server_options(self.keys)
            gatekeeper = Gatekeeper(ctx, self.keys / ALLOWED)
        except KeyFileError as exc:
            raise SetupError(str(exc)) from None
        # The ZAP handler must run before the sockets bind, or the first
        # connections would not be checked.
        gatekeeper.start()
        self._gatekeeper = gatekeeper
        logger.info("CURVE on: only the keys in %s may connect", self.keys / ALLOWED)
        return options

    @property
    def endpoints(self) -> tuple[str, str]:
        """Return the PUB and REP endpoints as bound, with real port numbers."""
        if self._pub is None or self._rep is None:
            raise RuntimeError("the aggregator is not started")
        return _bound(self._pub), _bound(self._rep)

    def stop(self) -> None:
        """Close both sockets and the context, dropping anything unsent."""
        if self._ctx is None:
            return
        if self._gatekeeper is not None:
            self._gatekeeper.stop()
            self._gatekeeper = None
        self._ctx.destroy(linger=0)
        self._ctx = self._pub = self._rep = None
        self._monitors.clear()

    def run_round(
        self,
        expected: int,
        timeout_s: float,
        on_progress: Progress | None = None,
    ) -> RoundResult:
        """Broadcast QTY and gather replies until ``expected`` rentals answered.

        The round ends the moment the last expected reply arrives, or at the
        deadline with what arrived by then.
        """
        if self._pub is None or self._rep is None:
            raise RuntimeError("the aggregator is not started")
        round_id = self.round_ids.next()
        replies: dict[str, Reply] = {}
        warned_duplicates: set[str] = set()
        started = time.monotonic()
        deadline = started + timeout_s
        next_broadcast = started
        logger.info("round %s started, expecting %d rentals", round_id, expected)

        while len(replies) < expected:
            now = time.monotonic()
            if now >= deadline:
                break
            if now >= next_broadcast:
                if now > started and on_progress is not None:
                    on_progress(list(replies))  # a slow round: still waiting
                self._pub.send_multipart(encode_query(round_id))
                logger.debug("broadcast QTY round=%s", round_id)
                next_broadcast = now + REBROADCAST_INTERVAL_S
            wait_ms = max(0, int((min(next_broadcast, deadline) - now) * 1000))
            ready = dict(self._poller.poll(wait_ms))
            self._report_handshakes(ready)
            if self._rep not in ready:
                continue
            reply = self._answer(self._rep, round_id)
            if reply is None:
                continue
            if reply.name in replies:
                if reply.name not in warned_duplicates:
                    warned_duplicates.add(reply.name)
                    logger.warning(
                        "second reply from %r in round %s: kept the first",
                        reply.name,
                        round_id,
                    )
                continue
            replies[reply.name] = reply
            logger.info("reply from %r: %d cars", reply.name, len(reply.cars))
            if on_progress is not None:
                on_progress(list(replies))

        elapsed_ms = (time.monotonic() - started) * 1000
        if len(replies) < expected:
            # INFO, not WARNING: the table, the JSON and the exit code say it,
            # and in watch mode an offline rental would repeat it every round.
            logger.info(
                "round %s closed at its deadline: %d of %d rentals answered",
                round_id,
                len(replies),
                expected,
            )
        else:
            logger.info("round %s finished in %.1f ms", round_id, elapsed_ms)
        return RoundResult.build(
            number=self.round_ids.count,
            round_id=round_id,
            expected=expected,
            elapsed_ms=elapsed_ms,
            replies=list(replies.values()),
        )

    def _report_handshakes(self, ready: dict[zmq.Socket, int]) -> None:
        """Log, once per socket, that a peer failed the CURVE handshake."""
        for monitor, endpoint in self._monitors.items():
            if monitor not in ready:
                continue
            recv_monitor_message(monitor)
            if endpoint not in self._reported:
                self._reported.add(endpoint)
                logger.warning(
                    "a peer failed the CURVE handshake on %s: plain text, "
                    "or a --server-key that is not this aggregator's",
                    endpoint,
                )

    def _answer(self, rep: zmq.Socket, round_id: str) -> Reply | None:
        """Receive and answer one REP message; return it if it counts this round.

        Whatever arrives gets an answer, so the peer's REQ lockstep completes.
        """
        frames, key_name = self._receive(rep)
        try:
            sent_round, name, location, api_url, count = decode_header(frames)
            self._check_speaker(key_name, name)
            if sent_round != round_id:
                if not self.round_ids.was_issued(sent_round):
                    raise ProtocolError(f"unknown round id {sent_round!r}")
                logger.info("late reply from %r to round %s: ignored", name, sent_round)
                self.seen.add(name)
                rep.send_multipart([ACK, sent_round.encode()])
                return None
            cars = decode_cars(frames[-1], count)
            # The availability rule again, by this clock: a rental's own
            # clock or code may be wrong, and a rented car is no offer.
            cars = available(cars, utc_now())
        except ProtocolError as exc:
            logger.warning("rejected reply: %s (frames=%r)", exc, _preview(frames))
            rep.send_multipart([ERR, str(exc).encode()])
            return None
        except Exception:  # a check that failed in a way we did not foresee
            logger.exception("could not check a reply (frames=%r)", _preview(frames))
            rep.send_multipart([ERR, b"the reply could not be checked"])
            return None
        rep.send_multipart([ACK, round_id.encode()])
        self.seen.add(name)
        if key_name is not None:
            self._speakers[key_name] = name
        return Reply(round_id, name, location, api_url, cars)

    def _receive(self, rep: zmq.Socket) -> tuple[list[bytes], str | None]:
        """Return a message's frames and, under CURVE, the name of the sender's key."""
        # Frame by frame: the size limit is per frame, so a message of very
        # many frames is read to its end but only its first frames are kept.
        frames = [rep.recv(copy=False)]
        while rep.rcvmore:
            frame = rep.recv(copy=False)
            if len(frames) <= REPLY_FRAMES:
                frames.append(frame)
        data = [frame.bytes for frame in frames]
        if self.keys is None:
            return data, None
        # The ZAP handler named the key (its file name); ZeroMQ carries that
        # name with every message from the connection as "User-Id".
        return data, str(frames[0].get("User-Id"))

    def _check_speaker(self, key_name: str | None, name: str) -> None:
        """Under CURVE, tie each key to one rental name and each name to one key.

        The first reply that counts decides; later ones that disagree are refused.
        """
        if key_name is None:
            return
        claimed = self._speakers.get(key_name)
        if claimed is not None and claimed != name:
            raise ProtocolError(f"key {key_name!r} speaks for {claimed!r} only")
        owner = next((k for k, n in self._speakers.items() if n == name), key_name)
        if owner != key_name:
            raise ProtocolError(f"rental name {name!r} belongs to key {owner!r}")


def _bound(sock: zmq.Socket) -> str:
    """Return the endpoint a socket is bound to, with the real port number."""
    return str(sock.getsockopt_string(zmq.LAST_ENDPOINT))


def _preview(frames: list[bytes]) -> list[bytes]:
    """Return the first bytes of at most eight frames, for a log line."""
    return [frame[:40] for frame in frames[:8]]
