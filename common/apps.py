"""The main functions behind aggregator.py and the rental service scripts."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from datetime import datetime

from common.cars import Rental, utc_now
from common.cli import (
    Parser,
    SetupError,
    Stopped,
    add_endpoint_options,
    add_verbosity_options,
    make_console,
    positive_float,
    positive_int,
    report_error,
    setup_logging,
    stop_on_signals,
)
from common.hub import Aggregator
from common.protocol import ProtocolError, check_text
from common.render import print_json, print_table, waiting_message
from common.service import RentalService

__all__ = ["aggregator_main", "rental_main"]

logger = logging.getLogger(__name__)

DEFAULT_EXPECT = 2
DEFAULT_TIMEOUT_S = 60.0

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
    parser.add_argument(
        "--expect",
        type=positive_int,
        default=DEFAULT_EXPECT,
        metavar="N",
        help=f"rentals to wait for (default: {DEFAULT_EXPECT})",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"deadline of the round (default: {DEFAULT_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the result as one JSON document on stdout, nothing else",
    )
    add_verbosity_options(parser)
    return parser


def aggregator_main(argv: list[str] | None = None) -> int:
    """Run one round and show it; return 0, 1 (rentals missing), 2 or 130."""
    args = aggregator_parser().parse_args(argv)
    log_console = setup_logging(args.verbose, args.quiet)
    stop_on_signals()
    try:
        with Aggregator(args.pub, args.rep) as aggregator:
            with log_console.status(waiting_message([], args.expect)) as status:
                result = aggregator.run_round(
                    args.expect,
                    args.timeout,
                    lambda names: status.update(waiting_message(names, args.expect)),
                )
        if args.json:
            print_json(result, sys.stdout)
        else:
            print_table(make_console(), result, args.timeout)
    except SetupError as exc:
        report_error(str(exc))
        return EXIT_USAGE
    except Stopped as stop:
        logger.info("stopped by %s", stop)
        return 128 + stop.signum
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error of the round.
        # Point stdout at /dev/null so that Python's exit flush stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except OSError as exc:
        report_error(f"cannot write the result: {exc.strerror}")
        return EXIT_MISSING
    return EXIT_OK if result.missing == 0 else EXIT_MISSING


def rental_main(
    argv: list[str] | None,
    default_rental: Callable[[datetime], Rental],
    prog: str,
) -> int:
    """Serve one rental's fleet until Ctrl+C; return 0, or 2 for bad set-up."""
    fleet = default_rental(utc_now())
    parser = Parser(
        prog=prog,
        description=f"Answer the aggregator's QTY broadcasts with the available "
        f"cars of {fleet.name}.",
    )
    add_endpoint_options(parser, "connect to")
    parser.add_argument(
        "--name", default=fleet.name, help=f"rental name (default: {fleet.name!r})"
    )
    parser.add_argument(
        "--location",
        default=fleet.location,
        help=f"rental location (default: {fleet.location!r})",
    )
    parser.add_argument(
        "--once", action="store_true", help="answer one round, then exit"
    )
    add_verbosity_options(parser)
    args = parser.parse_args(argv)
    for flag, value in (("--name", args.name), ("--location", args.location)):
        try:
            check_text(value, flag)
        except ProtocolError as exc:
            parser.error(f"argument {exc}")

    setup_logging(args.verbose, args.quiet)
    stop_on_signals()
    rental = Rental(args.name, args.location, fleet.api_url, fleet.cars)
    try:
        RentalService(rental, args.pub, args.rep).serve(once=args.once)
    except SetupError as exc:
        report_error(str(exc))
        return EXIT_USAGE
    except Stopped as stop:
        logger.info("%s stopped by %s", rental.name, stop)
    return EXIT_OK
