"""`python -m bench.load` runs against the production shape, briefly, and reports every figure.

Two clients for a few seconds with 3-row batches (one goods, one mobile, one game row). Like the placing
benchmark's smoke test, it never asserts a time: the figures of a real run are in docs/reliability.md.
It runs as a subprocess on a database, Redis, gunicorn, worker and beat of its own; the test database is
not touched.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REQUEST_KINDS = ["all", "submit", "poll", "pay", "gateway page", "gateway pay"]


@pytest.mark.timeout(400)
def test_the_load_script_pays_batches_with_no_5xx_and_a_clean_checker(tmp_path):
    output = tmp_path / "load.json"

    completed = subprocess.run(
        [sys.executable, "-m", "bench.load", "--clients", "2", "--duration", "5", "--rows", "3", "--json", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=360,
    )

    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    document = json.loads(output.read_text())
    assert document["ok"] and document["failures"] == []
    for kind in REQUEST_KINDS:
        seconds = document["requests"][kind]["seconds"]
        assert 0 < seconds["p50"] <= seconds["p95"] <= seconds["p99"] <= seconds["max"], kind
    # Rates count what started within the run (a slow machine may not have paid anything by then).
    for kind in ("all", "submit", "poll"):
        assert document["requests"][kind]["count"] > 0 and document["requests"][kind]["per_s"] > 0, kind
    batches = document["batches"]
    assert batches["submitted_in_run"] >= batches["reached_payment_in_run"] >= batches["paid_in_run"] >= 0
    # Every batch submitted, those in flight at the end included, was followed until it was paid.
    assert batches["submitted"] > 0
    assert batches["paid"] == batches["submitted"] and batches["outcomes"] == {"paid": batches["submitted"]}
    for journey in ("submission_to_payment_s", "submission_to_paid_s"):
        assert 0 < document[journey]["p50"] <= document[journey]["p95"], journey
    assert document["answers_5xx"] == 0 and document["no_answer"] == 0 and document["unexpected_answers"] == 0
    # The pay flow's redirects, one to the gateway and one back per paid batch, are its only non-2xx answers.
    assert document["non_2xx_by_status"] == {"302": 2 * batches["paid"]}
    assert document["checker"]["exit_status"] == 0 and "checks passed" in document["checker"]["output"]
    for side in ("placing", "notification"):
        assert document["server_s"][side]["p50"] <= document["server_s"][side]["p95"], side
    # What the worker's pool did within the run, from its log: placing rows at least.
    assert document["worker"]["tasks"]["orders.tasks.place_row"]["count"] > 0
    assert document["worker"]["pool_busy"] > 0
    assert document["cpu"]["on_cpu"]["gunicorn"] > 0 and document["cpu"]["on_cpu"]["celery worker"] > 0
    assert document["cpu"]["machine_busy"] > 0
    assert document["machine"]["load_average_at_start"] and document["machine"]["load_average_at_end"]
    # The printed report carries the same figures.
    assert "| submit: POST /api/v1/batches/" in completed.stdout
    assert "5xx: 0." in completed.stdout and "checks passed" in completed.stdout
    assert "\nOK\n" in completed.stdout
