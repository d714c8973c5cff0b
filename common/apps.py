"""The main functions behind aggregator.py and the rental service scripts."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import replace
from pathlib import Path

from common.cars import utc_now
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
from common.fleet import Churn, FleetError, load_fleet
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


def rental_main(argv: list[str] | None, default_fleet: Path, prog: str) -> int:
    """Serve one rental's fleet until Ctrl+C; return 0, or 2 for bad set-up."""
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
    add_verbosity_options(parser)
    args = parser.parse_args(argv)
    for flag, value in (("--name", args.name), ("--location", args.location)):
        if value is None:
            continue
        try:
            check_text(value, flag)
        except ProtocolError as exc:
            parser.error(f"argument {exc}")
    try:
        fleet = load_fleet(args.fleet, utc_now())
    except FleetError as exc:
        report_error(str(exc))
        return EXIT_USAGE

    setup_logging(args.verbose, args.quiet)
    stop_on_signals()
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
    )
    try:
        service.serve(once=args.once)
    except SetupError as exc:
        report_error(str(exc))
        return EXIT_USAGE
    except Stopped as stop:
        logger.info("%s stopped by %s", rental.name, stop)
    return EXIT_OK
