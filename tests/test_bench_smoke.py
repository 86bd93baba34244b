"""`python -m bench` runs end to end on a small batch and reports every figure.

It never asserts a time: how fast the machine is belongs to docs/performance.md, not to the suite.
The benchmark makes its own database on the server of DATABASE_URL, its own Redis and its own
workers, and removes them; the test database is not touched. It runs as a subprocess, the way people
run it; the tests never import the benchmark (it imports tests/support instead).
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The figures docs/performance.md reports for each batch size.
FIGURE_KEYS = [
    "accept_s",
    "place_s",
    "rows_per_s",
    "floor_s",
    "place_over_floor",
    "baseline_s",
    "baseline_over_batch",
    "pg_connections_per_row",
    "redis_commands_per_row",
    "floor_redis_commands_per_row",
    "worker_peak_rss_mb",
    "callback_worker_s",
    "callback_replay_s",
    "callback_replay_peak_mb",
    "callback_sql_statements",
    "callback_payload_kb",
]
# Legitimately zero in a shop that improves: workers that keep their database connection open.
MAY_BE_ZERO = {"pg_connections_per_row"}


@pytest.mark.timeout(600)
def test_the_benchmark_runs_and_reports_every_figure(tmp_path):
    output = tmp_path / "bench.json"

    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--rows", "20", "--repeat", "1", "--json", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=540,
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    document = json.loads(output.read_text())
    figures = document["sizes"]["20"]["figures"]
    for key in FIGURE_KEYS:
        value = figures[key]["median"]
        assert value >= 0 if key in MAY_BE_ZERO else value > 0, f"{key} is {value}"
        assert figures[key]["min"] <= figures[key]["median"] <= figures[key]["max"]
    assert document["placing_sql"]["sql_statements_per_row"] > document["placing_sql"]["data_statements_per_row"] > 0
    assert document["worker_idle_rss_mb"] > 0
    assert document["machine"]["postgresql"] and document["machine"]["redis"] and document["machine"]["nproc"] > 0
    # The table is printed too, one line per size.
    assert "| accept s |" in completed.stdout
    assert re.search(r"^\|\s+20 \|", completed.stdout, re.MULTILINE)
