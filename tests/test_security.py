"""CurveZMQ: only known rentals take part, and nobody else can listen in."""

from __future__ import annotations

import json
import signal
import stat

import pytest
import zmq

from common.keys import KeyFileError, create_keys
from common.render import BEST_MARK
from tests.procs import ANY_PORT, start_rental

NEGATIVE_WAIT_MS = 500


@pytest.fixture
def keys(tmp_path):
    """Return a key folder for the aggregator and rentals a and b."""
    folder = tmp_path / "keys"
    create_keys(folder, ["a", "b"])
    return folder


def secure_rental(spawn, script, pub, rep, key_file, server_key, *extra):
    keys = ("--key", str(key_file), "--server-key", str(server_key))
    return start_rental(spawn, script, pub, rep, *keys, *extra)


def test_key_files_are_laid_out_and_secrets_are_private(keys):
    assert (keys / "aggregator.key").exists()
    assert sorted(p.name for p in (keys / "allowed").iterdir()) == ["a.key", "b.key"]
    for secret in keys.glob("*.key_secret"):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_known_rentals_take_part_in_a_secure_round(aggregator, spawn, keys):
    agg, pub, rep = aggregator("--keys", str(keys), "--json", "--timeout", "30")
    server = keys / "aggregator.key"
    secure_rental(
        spawn, "rental_service.py", pub, rep, keys / "a.key_secret", server, "--once"
    )
    secure_rental(
        spawn, "rental_service2.py", pub, rep, keys / "b.key_secret", server, "--once"
    )

    assert agg.wait() == 0, agg.stderr
    assert json.loads(agg.stdout)["best_offer"]["car"]["model"] == "M4 Competition"


def test_a_rental_with_an_unknown_key_gets_nothing_in_and_nothing_out(
    aggregator, spawn, keys, tmp_path
):
    rogue_keys = tmp_path / "rogue"
    create_keys(rogue_keys, ["b"])  # a key named like b's, but not b's
    agg, pub, rep = aggregator("--keys", str(keys), "--json", "--timeout", "3")
    server = keys / "aggregator.key"
    secure_rental(spawn, "rental_service.py", pub, rep, keys / "a.key_secret", server)
    rogue = secure_rental(
        spawn, "rental_service2.py", pub, rep, rogue_keys / "b.key_secret", server, "-v"
    )

    assert agg.wait() == 1
    result = json.loads(agg.stdout)
    assert [r["name"] for r in result["rentals"]] == ["Locadora A - Centro"]
    assert result["missing"] == 1
    assert agg.stderr.count("refused a connection from 127.0.0.1") == 1
    assert not rogue.matches(r"received QTY")
    assert len(rogue.matches(r"refused this rental's key")) == 1


def test_plain_text_peers_see_and_post_nothing(aggregator, spawn, keys):
    agg, pub, rep = aggregator("--keys", str(keys), "--json", "--timeout", "3", "-v")
    plain = start_rental(spawn, "rental_service.py", pub, rep, "-v")
    ctx = zmq.Context()
    try:
        listener = ctx.socket(zmq.SUB)
        listener.linger = 0
        listener.subscribe(b"")
        listener.connect(pub)
        seen = len(agg.matches(r"broadcast QTY"))
        agg.wait_for(r"broadcast QTY", count=seen + 3)  # three after it connected
        assert not listener.poll(NEGATIVE_WAIT_MS)
    finally:
        ctx.destroy(linger=0)

    assert agg.wait() == 1
    assert json.loads(agg.stdout)["rentals"] == []
    assert not plain.matches(r"received QTY")
    plain.wait_for(r"if the aggregator uses --keys, pass --key, --server-key")
    # Logged once for each of the two sockets, however often peers retry.
    assert len(agg.matches(r"a peer failed the CURVE handshake on tcp://")) == 2


def test_a_rental_with_the_wrong_server_key_is_told(aggregator, spawn, keys, tmp_path):
    other = tmp_path / "other"
    create_keys(other, ["x"])
    _, pub, rep = aggregator("--keys", str(keys), "--timeout", "30")
    rental = secure_rental(
        spawn,
        "rental_service.py",
        pub,
        rep,
        keys / "a.key_secret",
        other / "aggregator.key",
    )

    rental.wait_for(r"is --server-key the aggregator's aggregator.key\?")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [
                "rental_service.py",
                "--key",
                "nowhere.key_secret",
                "--server-key",
                "{keys}/aggregator.key",
            ],
            "cannot read key file",
        ),
        (
            [
                "rental_service.py",
                "--key",
                "{keys}/aggregator.key",
                "--server-key",
                "{keys}/aggregator.key",
            ],
            "holds no secret key",
        ),
        (
            ["rental_service.py", "--key", "{keys}/a.key_secret"],
            "--key and --server-key go together",
        ),
        (["aggregator.py", "--keys", "{keys}/allowed"], "cannot read key file"),
        (["aggregator.py", "--keys", "nowhere"], "cannot read key file"),
    ],
)
def test_a_bad_key_file_fails_fast_with_one_line(spawn, keys, args, message):
    proc = spawn(*(arg.format(keys=keys) for arg in args))

    assert proc.wait() == 2
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_the_secure_demo_runs_end_to_end(spawn):
    demo = spawn("demo.py", "--secure", "--pub", ANY_PORT, "--rep", ANY_PORT)

    assert demo.wait(60) == 0, demo.stderr
    assert "CURVE on" in demo.stderr
    best_rows = [line for line in demo.stdout.splitlines() if BEST_MARK in line]
    assert len(best_rows) == 1 and "BMW M4 Competition" in best_rows[0]


def test_adding_a_rental_keeps_the_aggregator_key(keys):
    before = (keys / "aggregator.key").read_bytes()
    create_keys(keys, ["c"])

    assert (keys / "aggregator.key").read_bytes() == before
    assert (keys / "allowed" / "c.key").exists()
    with pytest.raises(KeyFileError, match="exists"):
        create_keys(keys, ["a"])


def test_one_key_speaks_for_one_rental_only(aggregator, spawn, keys):
    create_keys(keys, ["c"])  # a third allowed key, not yet used
    agg, pub, rep = aggregator("--keys", str(keys), "--watch", "0.5", "--json")
    server = keys / "aggregator.key"
    secure_rental(spawn, "rental_service.py", pub, rep, keys / "a.key_secret", server)
    secure_rental(spawn, "rental_service2.py", pub, rep, keys / "b.key_secret", server)
    agg.wait_for(r'"missing": 0', stream="stdout")

    # a's key posing as B, then as a rental of its own; c's key posing as B.
    for key, extra in (("a", []), ("a", ["--name", "Rogue Rent"]), ("c", [])):
        secure_rental(
            spawn,
            "rental_service2.py",
            pub,
            rep,
            keys / f"{key}.key_secret",
            server,
            *extra,
        )
    agg.wait_for(r"key 'a' speaks for 'Locadora A - Centro' only .*'Locadora B")
    agg.wait_for(r"key 'a' speaks for 'Locadora A - Centro' only .*'Rogue Rent'")
    agg.wait_for(r"rental name 'Locadora B - Aeroporto' belongs to key 'b'")
    settled = agg.wait_for(r'"missing": 0', stream="stdout", count=3)

    rentals = json.loads(settled.string)["rentals"]
    names = [r["name"] for r in rentals]
    assert names == ["Locadora A - Centro", "Locadora B - Aeroporto"]
    assert len(rentals[1]["cars"]) == 4
    agg.signal(signal.SIGINT)
    assert agg.wait() == 130
