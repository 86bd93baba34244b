"""`python -m bench` runs end to end on a small batch and reports every figure, on Redis and on RabbitMQ.

It never asserts a time: how fast the machine is belongs to docs/performance.md, not to the suite.
The benchmark makes its own database on the server of DATABASE_URL, its own Redis (and, with RabbitMQ, its
own virtual host) and its own workers, and removes them; the test database is not touched. It runs as a
subprocess, the way people run it; the tests never import the benchmark (it imports tests/support instead).
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.support.services import RabbitVhost

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
    "worker_peak_rss_mb",
    "worker_cpu_ms_per_row",
    "floor_worker_cpu_ms_per_row",
    "client_cpu_ms_per_row",
    "cpu_busy_pct",
    "floor_cpu_busy_pct",
    "callback_worker_s",
    "callback_replay_s",
    "callback_replay_peak_mb",
    "callback_sql_statements",
    "callback_payload_kb",
]
# The broker's own work, counted only when Redis is the broker.
REDIS_BROKER_KEYS = ["redis_commands_per_row", "floor_redis_commands_per_row"]
# The message servers' and PostgreSQL's CPU, counted when the benchmark can see their processes (its own Redis;
# RabbitMQ and PostgreSQL on this machine).
SERVER_CPU_KEYS = ["servers_cpu_ms_per_row", "floor_servers_cpu_ms_per_row", "database_cpu_ms_per_row"]
# Legitimately zero in a shop that improves: workers that keep their database connection open. CPU time is
# counted in ticks of 10 ms, which 20 rows may not fill.
MAY_BE_ZERO = {
    "pg_connections_per_row",
    "worker_cpu_ms_per_row",
    "floor_worker_cpu_ms_per_row",
    "client_cpu_ms_per_row",
    "floor_cpu_busy_pct",
    *SERVER_CPU_KEYS,
}
MANY_SHOPPERS_KEYS = ["many_shoppers_s", "many_shoppers_accept_s", "many_shoppers_floor_s", "many_shoppers_over_floor"]
# Tiny: 3 shoppers with 5-row batches stand for the benchmark's 20 with 50.
SMALL = ["--rows", "20", "--repeat", "1", "--shoppers", "3", "--shopper-rows", "5"]


def run_bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench", *SMALL, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=540,
    )


def assert_reports_every_figure(document: dict, stdout: str, *, figure_keys: list[str]) -> None:
    figures = document["sizes"]["20"]["figures"]
    assert sorted(set(figures) - set(SERVER_CPU_KEYS)) == sorted(figure_keys)
    for key in figures:
        value = figures[key]["median"]
        assert value >= 0 if key in MAY_BE_ZERO else value > 0, f"{key} is {value}"
        assert figures[key]["min"] <= figures[key]["median"] <= figures[key]["max"]
    assert document["placing_sql"]["sql_statements_per_row"] > document["placing_sql"]["data_statements_per_row"] > 0
    assert document["worker_idle_rss_mb"] > 0
    assert document["machine"]["postgresql"] and document["machine"]["redis"] and document["machine"]["nproc"] > 0
    # Many shoppers: every figure, for the shape asked for.
    shoppers = document["many_shoppers"]
    assert (shoppers["shoppers"], shoppers["rows_per_batch"]) == (3, 5)
    for key in MANY_SHOPPERS_KEYS:
        assert shoppers["figures"][key]["median"] > 0, key
    # The tables are printed too, one line per size, and the many-shoppers line.
    assert "| accept s |" in stdout
    assert re.search(r"^\|\s+20 \|", stdout, re.MULTILINE)
    assert re.search(r"^\|\s+3 × 5 \|", stdout, re.MULTILINE)


@pytest.mark.timeout(600)
def test_the_benchmark_runs_and_reports_every_figure(tmp_path):
    output = tmp_path / "bench.json"

    completed = run_bench("--json", str(output))

    assert completed.returncode == 0, completed.stderr[-3000:]
    document = json.loads(output.read_text())
    assert document["settings"]["broker"] == "redis"
    assert_reports_every_figure(document, completed.stdout, figure_keys=FIGURE_KEYS + REDIS_BROKER_KEYS)
    assert document["sizes"]["20"]["redis_commands_by_name_per_row"]


@pytest.mark.timeout(600)
def test_the_benchmark_runs_on_rabbitmq_in_a_virtual_host_it_removes(tmp_path, rabbitmq_url):
    # The server the RabbitMQ tests use (rabbitmq_url skips this test when there is none), another virtual host.
    name = f"batchpay-bench-smoke-{os.getpid()}"
    broker_url = urlunsplit(urlsplit(rabbitmq_url)._replace(path=f"/{name}"))
    output = tmp_path / "bench.json"

    completed = run_bench("--broker", broker_url, "--json", str(output))

    assert completed.returncode == 0, completed.stderr[-3000:]
    document = json.loads(output.read_text())
    assert document["settings"]["broker"] == "rabbitmq"
    assert document["settings"]["broker_url"].endswith(f"/{name}")
    assert document["machine"]["rabbitmq"]
    assert_reports_every_figure(document, completed.stdout, figure_keys=FIGURE_KEYS)
    assert "Broker: RabbitMQ" in completed.stdout
    # Redis executed only the results' commands: no broker command count is reported.
    assert "Redis cmd/row" not in completed.stdout
    assert not RabbitVhost(broker_url, default_name=name).exists()
