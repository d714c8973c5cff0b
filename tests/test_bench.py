"""The benchmark's quick mode runs end to end (a smoke test: no timings asserted)."""

import json


def test_quick_benchmark_writes_its_figures(spawn, tmp_path):
    out = tmp_path / "figures.json"
    bench = spawn("bench/round.py", "--quick", "--json", str(out))

    assert bench.wait(120) == 0, bench.stderr
    figures = json.loads(out.read_text())
    assert figures["latency"]["rounds"] == 200
    assert figures["latency"]["ratio"] > 0
    assert [(p["rentals"], p["cars"]) for p in figures["scale"]] == [
        (10, 10),
        (10, 100),
        (50, 100),
    ]
    assert len(figures["time_to_table_ms"]) == 1
