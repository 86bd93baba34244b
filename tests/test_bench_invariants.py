"""`python -m bench.invariants` fills a database of its own with a consistent shop and times the invariant
checker on it: every check passes there (a check that fires on consistent data is a false alarm).

At 20,000 orders to keep the suite quick; the figures for 100,000 are in docs/invariants.md. Like the
placing benchmark, it never asserts a time: how fast the machine is belongs to the docs.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(300)
def test_the_checker_finds_nothing_on_a_large_consistent_shop_and_reports_its_time(tmp_path):
    output = tmp_path / "figures.json"

    completed = subprocess.run(
        [sys.executable, "-m", "bench.invariants", "--orders", "20000", "--repeat", "1", "--json", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )

    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    figures = json.loads(output.read_text())
    assert (figures["orders"], figures["batches"], figures["ok"]) == (20000, 2000, True)
    assert figures["check_seconds_median"] > 0 and len(figures["slowest_checks"]) == 5
    assert "20,000 orders in 2,000 batches" in completed.stdout
