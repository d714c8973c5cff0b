"""The main functions behind aggregator.py and the rental service scripts."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import NoReturn

from rich.console import Group, RenderableType
from rich.live import Live
from rich.text import Text

from common.cars import utc_now
from common.cli import (
    Parser,
    SetupError,
    Stopped,
    add_endpoint_options,
    add_round_options,
    add_verbosity_options,
    logs_above,
    make_console,
    positive_float,
    positive_int,
    report_error,
    setup_logging,
    stop_on_signals,
)
from common.consolidate import Filters
from common.fleet import Churn, FleetError, load_fleet, parse_amount
from common.hub import Aggregator
from common.keys import KeyFileError, client_options
from common.monitor import Monitor
from common.protocol import ProtocolError, check_text
from common.render import monitor_view, print_json, round_view, waiting_message
from common.service import RentalService

__all__ = ["aggregator_main", "rental_main"]

logger = logging.getLogger(__name__)

DEFAULT_EXPECT = 2
DEFAULT_TIMEOUT_S = 60.0
STATUS_DELAY_S = 0.25

EXIT_OK = 0
EXIT_MISSING = 1
EXIT_USAGE = 2


def aggregator_parser() -> Parser:
    """Return the aggregator's option parser."""
    parser = Parser(
        prog="aggregator.py",
        description="Broadcast QTY to the rental services, gather their cars "
        "and show every available car with the cheapest offer highlighted.",
    )
    add_endpoint_options(parser, "bind")
    add_round_options(parser, expect=DEFAULT_EXPECT, timeout_s=DEFAULT_TIMEOUT_S)
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the result as one JSON document on stdout, nothing else "
        "(with --watch, one line per round)",
    )
    parser.add_argument(
        "--keys",
        type=Path,
        metavar="DIR",
        help="encrypt with CurveZMQ and admit only the rental keys in DIR/allowed "
        "(make DIR with: python -m common.keys DIR --rentals A B)",
    )
    parser.add_argument(
        "--watch",
        type=positive_float,
        metavar="SECONDS",
        help="run a round every SECONDS until Ctrl+C, redrawing one live view",
    )
    filters = parser.add_argument_group("filters (table, best offers and JSON)")
    filters.add_argument(
        "--location",
        type=_text_option,
        metavar="NAME",
        help="only cars at locations containing NAME (any case, any accents)",
    )
    filters.add_argument(
        "--make", type=_text_option, metavar="NAME", help="only makes containing NAME"
    )
    filters.add_argument(
        "--max-rate",
        type=_amount,
        metavar="AMOUNT",
        help="only cars at most AMOUNT reais a day",
    )
    filters.add_argument(
        "--days",
        type=positive_int,
        metavar="N",
        help="show the total for N days and pick the best offer by it",
    )
    parser.add_argument(
        "--top",
        type=positive_int,
        metavar="N",
        help="list only the N cheapest cars in the table, not the JSON "
        "(the totals still count every car)",
    )
    add_verbosity_options(parser)
    return parser


def _text_option(text: str) -> str:
    try:
        check_text(text, "the value")
    except ProtocolError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _amount(text: str) -> Decimal:
    amount = parse_amount(text)
    if amount is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount like 2500.00")
    return amount


def aggregator_main(argv: list[str] | None = None) -> int:
    """Run one round (or, with --watch, one every SECONDS) and show it.

    Return 0, 1 (rentals missing), 2 (bad set-up), or 128 + the signal.
    """
    stop_on_signals()  # first: a signal during set-up also ends cleanly
    try:
        args = aggregator_parser().parse_args(argv)
        log_console = setup_logging(args.verbose, args.quiet)
        filters = Filters(args.location, args.make, args.max_rate)
        with Aggregator(args.pub, args.rep, keys=args.keys) as aggregator:
            if args.watch is not None:
                _watch(aggregator, args, filters)
            with log_console.status(waiting_message([], args.expect)) as status:
                result = aggregator.run_round(
                    args.expect,
                    args.timeout,
                    lambda names: status.update(waiting_message(names, args.expect)),
                )
        result = result.narrowed(filters, args.days)
        code = EXIT_OK if result.missing == 0 else EXIT_MISSING
        if args.json:
            print_json(result, sys.stdout, offline=[])
        else:
            view = round_view(result, timeout_s=args.timeout, top=args.top)
            make_console().print(view)
        return code
    except SetupError as exc:
        report_error(str(exc))
        return EXIT_USAGE
    except Stopped as stop:
        logger.info("stopped by %s", stop)
        return 128 + stop.signum
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): it has what it wanted. Point
        # stdout at /dev/null so that Python's exit flush stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:
        report_error(f"cannot write the result: {exc.strerror}")
        return EXIT_MISSING


def _watch(
    aggregator: Aggregator, args: argparse.Namespace, filters: Filters
) -> NoReturn:
    """Run a round every --watch seconds, redrawing one view, until a signal."""
    monitor = Monitor()
    console = make_console()
    timeout_s = min(args.timeout, args.watch)
    # Redraw in place on a terminal; elsewhere (a file, a pipe) print each round.
    live = None
    if console.is_terminal and not args.json:
        live = Live(console=console, auto_refresh=False)
    view: RenderableType = Text("")
    with live or nullcontext(), logs_above(live):
        while True:
            started = time.monotonic()
            # Every rental seen before, even too late for its round, is waited
            # for too (until the deadline): more rentals than --expect is fine.
            expected = max(args.expect, len(aggregator.seen))

            def progress(
                names: list[str],
                expected: int = expected,
                shown: RenderableType = view,
                started: float = started,
            ) -> None:
                # Redrawing costs tens of milliseconds: a quick round is left
                # alone, a slow one shows who answered so far.
                slow = time.monotonic() - started >= STATUS_DELAY_S
                if live is not None and slow:
                    status = waiting_message(names, expected)
                    live.update(Group(shown, status), refresh=True)

            result = aggregator.run_round(expected, timeout_s, progress)
            result = result.narrowed(filters, args.days)
            monitor.record(result, utc_now())
            if args.json:
                print_json(result, sys.stdout, offline=monitor.offline())
            else:
                view = monitor_view(monitor, result, timeout_s=timeout_s, top=args.top)
                if live is not None:
                    live.update(view, refresh=True)
                else:
                    console.print(view)
            # Pacing, not synchronisation: the next round starts on schedule.
            time.sleep(max(0.0, started + args.watch - time.monotonic()))


def rental_main(argv: list[str] | None, default_fleet: Path, prog: str) -> int:
    """Serve one rental's fleet until Ctrl+C; return 0, or 2 for bad set-up."""
    stop_on_signals()  # first: a signal during set-up also ends cleanly
    try:
        return _serve_rental(argv, default_fleet, prog)
    except Stopped:
        return EXIT_OK


def _serve_rental(argv: list[str] | None, default_fleet: Path, prog: str) -> int:
    parser = Parser(
        prog=prog,
        description="Answer the aggregator's QTY broadcasts with the available "
        f"cars of a fleet (default: {default_fleet.name}).",
    )
    add_endpoint_options(parser, "connect to")
    parser.add_argument(
        "--fleet",
        type=Path,
        default=default_fleet,
        metavar="FILE",
        help="fleet JSON file (see README: Fleet files)",
    )
    parser.add_argument("--name", help="rental name (default: the fleet's)")
    parser.add_argument("--location", help="rental location (default: the fleet's)")
    parser.add_argument(
        "--once", action="store_true", help="answer one round, then exit"
    )
    parser.add_argument(
        "--churn",
        type=positive_float,
        metavar="SECONDS",
        help="every SECONDS, rent out or return one car at random",
    )
    parser.add_argument(
        "--seed", type=int, help="seed for --churn, to repeat the same sequence"
    )
    parser.add_argument(
        "--key",
        type=Path,
        metavar="FILE",
        help="this rental's secret key (a .key_secret file): encrypt with CurveZMQ",
    )
    parser.add_argument(
        "--server-key",
        type=Path,
        metavar="FILE",
        help="the aggregator's public key (aggregator.key), needed with --key",
    )
    add_verbosity_options(parser)
    args = parser.parse_args(argv)
    for flag, value in (("--name", args.name), ("--location", args.location)):
        if value is None:
            continue
        try:
            check_text(value, flag)
        except ProtocolError as exc:
            parser.error(f"argument {exc}")
    if (args.key is None) != (args.server_key is None):
        parser.error("--key and --server-key go together")
    try:
        fleet = load_fleet(args.fleet, utc_now())
        curve = None
        if args.key is not None:
            curve = client_options(args.key, args.server_key)
    except (FleetError, KeyFileError) as exc:
        report_error(str(exc))
        return EXIT_USAGE

    setup_logging(args.verbose, args.quiet)
    rental = replace(
        fleet,
        name=args.name or fleet.name,
        location=args.location or fleet.location,
    )
    service = RentalService(
        rental,
        args.pub,
        args.rep,
        churn=None if args.churn is None else Churn(args.seed),
        churn_interval_s=args.churn or 0.0,
        curve=curve,
    )
    try:
        service.serve(once=args.once)
    except SetupError as exc:
        report_error(str(exc))
        return EXIT_USAGE
    except Stopped as stop:
        logger.info("%s stopped by %s", rental.name, stop)
    return EXIT_OK
