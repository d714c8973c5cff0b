"""CurveZMQ keys: create them, load them, and admit only known rentals.

Create a key set (run once, then hand each rental its own secret file):

    poetry run python -m common.keys DIR --rentals A B

DIR/aggregator.key         the aggregator's public key: give it to every rental
DIR/aggregator.key_secret  the aggregator's secret key: keep it with the aggregator
DIR/A.key_secret           rental A's secret key: give it to rental A only
DIR/allowed/A.key          rental A's public key: the aggregator admits it
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
from pathlib import Path

import zmq
import zmq.auth
import zmq.utils.z85
from zmq.auth.thread import ThreadAuthenticator

from common.cli import Parser, report_error

__all__ = [
    "ALLOWED",
    "KeyFileError",
    "Gatekeeper",
    "client_options",
    "create_keys",
    "server_options",
]

logger = logging.getLogger(__name__)

AGGREGATOR = "aggregator"
ALLOWED = "allowed"
KEY_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class KeyFileError(Exception):
    """A key file that is missing, unreadable or of the wrong kind."""


def create_keys(directory: Path, rentals: list[str]) -> None:
    """Write the aggregator's and each rental's key pair into ``directory``.

    In a folder that has keys already, the aggregator's pair is kept (the
    rentals hold its public key) and only the new rentals are added.
    """
    taken = [name for name in rentals if (directory / f"{name}.key_secret").exists()]
    if taken:
        raise KeyFileError(f"a key for {taken[0]!r} exists in '{directory}' already")
    allowed = directory / ALLOWED
    allowed.mkdir(parents=True, exist_ok=True)
    names = rentals
    if not (directory / f"{AGGREGATOR}.key_secret").exists():
        names = [AGGREGATOR, *rentals]
    for name in names:
        public, secret = zmq.auth.create_certificates(directory, name)
        # Only the owner may read a secret key.
        os.chmod(secret, 0o600)
        if name != AGGREGATOR:
            shutil.move(public, allowed / Path(public).name)


def server_options(directory: Path) -> dict[str, object]:
    """Return the socket options that make a socket the CURVE server."""
    public, secret = _load(directory / f"{AGGREGATOR}.key_secret", secret=True)
    if not (directory / ALLOWED).is_dir():
        allowed = directory / ALLOWED
        raise KeyFileError(f"no folder of allowed rental keys at '{allowed}'")
    return {"curve_server": True, "curve_publickey": public, "curve_secretkey": secret}


def client_options(key_file: Path, server_key_file: Path) -> dict[str, object]:
    """Return the socket options of a CURVE client with this key and server."""
    public, secret = _load(key_file, secret=True)
    server, _ = _load(server_key_file, secret=False)
    return {
        "curve_publickey": public,
        "curve_secretkey": secret,
        "curve_serverkey": server,
    }


def _load(path: Path, *, secret: bool) -> tuple[bytes, bytes]:
    if not path.is_file():
        raise KeyFileError(f"cannot read key file '{path}': no such file")
    try:
        public, secret_key = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"cannot read key file '{path}': {exc}") from None
    if secret and secret_key is None:
        raise KeyFileError(f"'{path}' holds no secret key: give the .key_secret file")
    for key in (public, secret_key) if secret else (public,):
        if not _is_z85_key(key):
            raise KeyFileError(f"'{path}' holds a damaged key: make the keys again")
    return public, secret_key or b""


def _is_z85_key(key: bytes | None) -> bool:
    """Return True for a 32-byte CurveZMQ key written in Z85 (40 characters)."""
    try:
        return key is not None and len(zmq.utils.z85.decode(key)) == 32
    except (ValueError, KeyError, TypeError):
        return False


def _allowed_keys(folder: Path) -> dict[bytes, str]:
    """Return the public key of every .key file in ``folder``, to its file name."""
    keys = {}
    for path in sorted(folder.glob("*.key")):
        public, _ = _load(path, secret=False)
        keys[public] = path.stem
    return keys


class Gatekeeper(ThreadAuthenticator):
    """Admit CURVE clients whose public keys are in a folder; log each refusal once.

    ZeroMQ asks this thread (over ZAP) about every new connection to a CURVE
    server socket in the context, before any message passes.
    """

    def __init__(self, ctx: zmq.Context, allowed: Path) -> None:
        super().__init__(ctx, log=logger)
        self._known_keys = _allowed_keys(allowed)
        self._peer = "?"
        self._refused: set[tuple[str, bytes]] = set()

    def start(self) -> None:
        """Start answering ZAP requests for every domain."""
        super().start()
        self.configure_curve_callback("*", credentials_provider=self)

    async def handle_zap_message(self, msg: list[bytes]) -> None:
        # The peer's address is frame 3 of a ZAP request; keep it for the log.
        if len(msg) > 3:
            self._peer = msg[3].decode("utf-8", "replace")
        await super().handle_zap_message(msg)

    def curve_user_id(self, client_key: bytes) -> str:
        """Name an admitted key by its file name: "a" for allowed/a.key."""
        return self._known_keys.get(zmq.utils.z85.encode(client_key), "?")

    def callback(self, domain: str, key: bytes) -> bool:
        """Return True for a known rental key; log an unknown one once."""
        if key in self._known_keys:
            return True
        if (self._peer, key) not in self._refused:
            self._refused.add((self._peer, key))
            logger.warning(
                "refused a connection from %s: unknown key %s",
                self._peer,
                key.decode("ascii", "replace"),
            )
        return False


def main(argv: list[str] | None = None) -> int:
    """Create a key set; return 0, or 2 for a bad name or folder."""
    parser = Parser(
        prog="common.keys",
        description="Create CurveZMQ key pairs for the aggregator and each rental.",
    )
    parser.add_argument("directory", type=Path, metavar="DIR")
    parser.add_argument(
        "--rentals", nargs="+", required=True, metavar="NAME", help="one name each"
    )
    args = parser.parse_args(argv)
    for name in args.rentals:
        if not KEY_NAME.match(name) or name == AGGREGATOR:
            parser.error(f"argument --rentals: {name!r} is not a short plain name")
    if len(set(args.rentals)) < len(args.rentals):
        parser.error("argument --rentals: a name is given twice")
    try:
        create_keys(args.directory, args.rentals)
    except KeyFileError as exc:
        report_error(str(exc), prog=parser.prog)
        return 2
    except OSError as exc:
        message = f"cannot write keys into '{args.directory}': {exc.strerror}"
        report_error(message, prog=parser.prog)
        return 2
    print(f"keys written to {args.directory}: {', '.join(args.rentals)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
