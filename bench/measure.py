"""The measurements. Imported only once Django is configured for the benchmark's own services.

Every clock is `time.perf_counter()` in this process. A batch's "place" clock starts when its 202 has
arrived and stops when this process sees the merged payment in the database, which is what a client
polling the API would see.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import threading
import time
import tracemalloc
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from decimal import Decimal
from statistics import mean
from unittest import mock

import redis
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from bench import tasks as floor_tasks
from bench.infra import BenchError, BenchWorker, cpu_seconds, parent_pid, server_tree_cpu_seconds
from orders import selectors, services
from orders.models import Batch, Product
from orders.sql import quoted_column, quoted_table
from orders.tasks import place_row
from payments.models import Payment
from tests.support.services import Broker
from tests.support.waiting import WaitTimeout, wait_until
from tests.support.wire import as_in_a_worker, traced

BATCHES_URL = "/api/v1/batches/"
CATALOGUE_SIZE = 20
# Half of the catalogue tracks stock, so that rows take the conditional stock UPDATE and concurrent
# rows of one product meet on its row lock, as in a real shop; the rest is unlimited.
TRACKED_STOCK = 2_000_000_000
WARM_UP_ROWS = 20
# Placing a row through the in-process order interface, to count its SQL: enough rows to cover every
# product of the catalogue several times.
STATEMENT_SAMPLE_ROWS = 200


def prepare_database() -> Shopper:
    """Migrate the benchmark's database and give it a catalogue and an API user."""
    call_command("migrate", interactive=False, verbosity=0)
    for index in range(CATALOGUE_SIZE):
        Product.objects.create(
            sku=_sku(index),
            name=f"Bench product {index}",
            kind="goods",
            unit_price=Decimal(f"{9 + index}.90"),
            stock=TRACKED_STOCK if index % 2 == 0 else None,
        )
    return Shopper()


def batch_rows(count: int) -> list[dict]:
    """Goods rows cycling through the catalogue with quantities 1 to 3, as the API takes them."""
    return [{"kind": "goods", "sku": _sku(index % CATALOGUE_SIZE), "quantity": 1 + index % 3} for index in range(count)]


def _sku(index: int) -> str:
    return f"BENCH-{index:02d}"


class Shopper:
    """One integrator on the API, authenticated by its token as in production (middleware, DRF,
    authentication, throttling, serializers: the whole request stack, in this process)."""

    def __init__(self, username: str = "bench-integrator"):
        self.user = get_user_model().objects.create_user(username)
        token = Token.objects.create(user=self.user)
        self.client = APIClient()
        self.client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    def submit(self, rows: list[dict]) -> tuple[str, float, float]:
        """POST a batch; returns its id and the perf_counter() values when the request started and answered."""
        # Encoded before the clock starts: producing the JSON is the client's work, not the shop's.
        body = json.dumps({"rows": rows})
        started = time.perf_counter()
        # secure: an HTTPS request, so that the production security settings (SSL redirect) stay on.
        response = self.client.post(BATCHES_URL, data=body, content_type="application/json", secure=True)
        answered = time.perf_counter()
        if response.status_code != 202:
            raise BenchError(f"POST {BATCHES_URL} answered {response.status_code}: {response.content[:300]!r}")
        return response.json()["id"], started, answered


def wait_for_payment(batch_id: str, *, since: float, timeout: float) -> float:
    """Seconds from `since` until the batch's merged payment exists."""
    return wait_for_payments([batch_id], since=since, timeout=timeout)


def wait_for_payments(batch_ids: list[str], *, since: float, timeout: float) -> float:
    """Seconds from `since` until every batch's merged payment exists.

    Each look is one short statement written out: the look competes for the cores with the workers it
    measures (a few hundred looks a batch), and the floor, which waits with BLPOP, pays no such price; the
    ORM's `count()` cost several times as much CPU here and in PostgreSQL."""
    batch_field = Payment._meta.get_field("batch")
    look = (
        f"SELECT count(*) FROM {quoted_table(Payment)} WHERE {quoted_column(Payment, 'batch')}"
        f" IN ({', '.join(['%s'] * len(batch_ids))})"
    )
    look_params = [batch_field.get_db_prep_value(batch_id, connection) for batch_id in batch_ids]

    def paid() -> int:
        with connection.cursor() as cursor:
            cursor.execute(look, look_params)
            return cursor.fetchone()[0]

    while paid() < len(batch_ids):
        elapsed = time.perf_counter() - since
        if elapsed > timeout:
            statuses = Counter(Batch.objects.filter(pk__in=batch_ids).values_list("status", flat=True))
            raise BenchError(
                f"{len(batch_ids) - paid()} of {len(batch_ids)} batches have no payment after "
                f"{timeout:.0f}s (statuses {dict(statuses)})"
            )
        # Often enough that polling adds at most ~0.5% to what is measured (and 2 ms to a single
        # checkout), rarely enough not to take a core from the workers on a long batch.
        time.sleep(min(0.05, max(0.002, elapsed / 200)))
    return time.perf_counter() - since


class RedisCommands:
    """Commands the private Redis has executed, by name (INFO commandstats), without our own INFO calls."""

    def __init__(self, url: str):
        self.client = redis.Redis.from_url(url)

    def snapshot(self) -> Counter:
        stats = self.client.info("commandstats")
        return Counter(
            {name.removeprefix("cmdstat_"): stat["calls"] for name, stat in stats.items() if name != "cmdstat_info"}
        )


def pg_sessions() -> int:
    """Connections ever opened to the benchmark's database (pg_stat_database.sessions, PostgreSQL 14+)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def postgres_server_pid() -> int | None:
    """PostgreSQL's postmaster, when it runs on this machine and its processes are ours to read: the parent of the
    backend serving this process."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    return parent_pid(backend) if os.access(f"/proc/{backend}/stat", os.R_OK) else None


def _busy_pct(figures: dict, prefix: str, row_count: int, seconds: float) -> float:
    cpu_ms_per_row = sum(
        figures.get(f"{prefix}{name}_cpu_ms_per_row", 0.0) for name in ("worker", "servers", "database", "client")
    )
    return 100 * cpu_ms_per_row * row_count / 1000 / ((os.cpu_count() or 1) * seconds)


def settle_database_statistics() -> None:
    """Wait for the workers' connections to end, so that their backends have exited and counted
    themselves in pg_stat_database. Celery's Django fixup closes a task's connection after the task;
    workers that keep their connections open would open none per row, so then we go on after a moment."""

    def alone() -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return cursor.fetchone()[0] == 0

    with contextlib.suppress(WaitTimeout):
        wait_until(alone, timeout=3, what="the workers' database connections to close", interval=0.02)


@contextmanager
def dispatch_suppressed():
    """Batches submitted inside are recorded but never reach the workers: placing them is ours to do here."""
    with mock.patch("orders.services.submission.queue_task"):
        yield


class Benchmark:
    """The measurements of one invocation, against one worker, one broker (its Redis, or RabbitMQ with results
    in the Redis) and one database."""

    def __init__(
        self, *, shopper: Shopper, worker: BenchWorker, broker: Broker, server_pids: list[int], baseline_sample: int
    ):
        self.shopper = shopper
        self.worker = worker
        # The message servers' processes (the broker's, and the results' Redis when that is another), whose CPU
        # time is counted; none when one of them is not ours to see.
        self.server_pids = server_pids
        self.redis = RedisCommands(broker.result_backend)
        # Redis's command counts are the broker's work only when Redis is the broker; with RabbitMQ they would
        # count the results alone and compare with nothing, so they are left out.
        self.count_broker_commands = broker.kind == "redis"
        self.baseline_sample = baseline_sample
        # The whole PostgreSQL server's CPU is counted (every backend, the WAL writer, the checkpointer): on a
        # machine that runs nothing else, that is the database's work for the benchmark.
        self.postgres_pid = postgres_server_pid()

    # -- one run of each measurement ------------------------------------------------------------------

    def batch(self, row_count: int) -> dict:
        """accept + place of one batch, with what it cost in connections, Redis commands and worker memory."""
        rows = batch_rows(row_count)
        self.worker.new_callback_times()  # forget the callbacks of earlier runs
        self.worker.reset_peak_rss()
        redis_before, sessions_before = self.redis.snapshot(), pg_sessions()

        cpu_before = self._cpu()
        batch_id, started, answered = self.shopper.submit(rows)
        place = wait_for_payment(batch_id, since=answered, timeout=60 + row_count * 0.2)
        cpu = self._cpu_per_row_since(cpu_before, row_count)

        callback = wait_until(self.worker.new_callback_times, timeout=30, what="the worker to log finalize_batch")[-1]
        settle_database_statistics()
        redis_commands = self.redis.snapshot() - redis_before
        peaks = self.worker.peak_rss_kb()
        figures = {
            "batch_id": batch_id,
            "accept_s": answered - started,
            "place_s": place,
            "rows_per_s": row_count / place,
            "pg_connections_per_row": (pg_sessions() - sessions_before) / row_count,
            "worker_peak_rss_mb": max(peaks.values()) / 1024,
            "callback_worker_s": callback,
            **{f"{name}_cpu_ms_per_row": ms for name, ms in cpu.items()},
        }
        if self.count_broker_commands:
            figures["redis_commands_per_row"] = sum(redis_commands.values()) / row_count
            figures["redis_commands_by_name"] = {
                name: calls / row_count for name, calls in redis_commands.most_common()
            }
        return figures

    def floor(self, row_count: int) -> dict:
        """The same workers running the pipeline's shape with no-op tasks (bench.tasks)."""
        redis_before, cpu_before = self.redis.snapshot(), self._cpu()
        seconds = self._floor_chords(1, row_count)
        cpu = self._cpu_per_row_since(cpu_before, row_count)
        redis_commands = self.redis.snapshot() - redis_before
        figures = {"floor_s": seconds, **{f"floor_{name}_cpu_ms_per_row": ms for name, ms in cpu.items()}}
        if self.count_broker_commands:
            figures["floor_redis_commands_per_row"] = sum(redis_commands.values()) / row_count
        return figures

    def _cpu(self) -> dict[str, float]:
        """CPU seconds used so far by the worker's processes, the message servers and the PostgreSQL server (when
        they are ours to see), and this process (the client: requests and polling)."""
        used = {"worker": self.worker.cpu_seconds()}
        if self.server_pids:
            used["servers"] = cpu_seconds(self.server_pids)
        if self.postgres_pid is not None:
            used["database"] = server_tree_cpu_seconds(self.postgres_pid)
        used["client"] = cpu_seconds([os.getpid()])
        return used

    def _cpu_per_row_since(self, before: dict[str, float], row_count: int) -> dict[str, float]:
        return {name: (seconds - before[name]) * 1000 / row_count for name, seconds in self._cpu().items()}

    def _floor_chords(self, chords: int, row_count: int) -> float:
        """Seconds until `chords` no-op chords of `row_count` tasks, dispatched at once, have all called back."""
        run_ids = [uuid.uuid4().hex for _ in range(chords)]
        started = time.perf_counter()
        for run_id in run_ids:
            floor_tasks.floor_dispatch.delay(run_id, row_count)
        self._wait_for_floor(
            [floor_tasks.DONE_KEY.format(run_id=run_id) for run_id in run_ids], timeout=60 + chords * row_count * 0.2
        )
        return time.perf_counter() - started

    def _wait_for_floor(self, keys: list[str], *, timeout: float) -> None:
        waiting = set(keys)
        deadline = time.monotonic() + timeout
        while waiting and time.monotonic() < deadline:
            # BLPOP answers as soon as a callback pushes; short calls, because redis-py gives up on a
            # socket that stays silent for socket_timeout (5 s by default).
            popped = self.redis.client.blpop(sorted(waiting), timeout=1)
            if popped is not None:
                key = popped[0]
                waiting.discard(key.decode() if isinstance(key, bytes) else key)
        if waiting:
            raise BenchError(f"{len(waiting)} floor chord callbacks did not run within {timeout:.0f}s")

    def baseline(self, row_count: int) -> dict:
        """One shopper's single-order checkouts, each waited to its own payment before the next.

        Beyond `baseline_sample` checkouts the time is extrapolated linearly: the checkouts are
        sequential and independent, so N of them take N times one of them."""
        checkouts = min(row_count, self.baseline_sample)
        rows = batch_rows(checkouts)
        started = time.perf_counter()
        for row in rows:
            batch_id, _, answered = self.shopper.submit([row])
            wait_for_payment(batch_id, since=answered, timeout=60)
        seconds = time.perf_counter() - started
        return {"baseline_s": seconds * row_count / checkouts, "baseline_checkouts": checkouts}

    def many_shoppers(self, shoppers: list[Shopper], *, rows_per_batch: int, repeat: int) -> list[dict]:
        """Each shopper POSTs a batch of `rows_per_batch` rows at the same moment (a thread each, released by a
        barrier): seconds from the first POST until every batch has its merged payment. Its floor is as many
        no-op chords of as many tasks, dispatched at once: the same dispatch tasks, header tasks, callbacks and
        chord counters, with the work taken out."""
        runs = []
        for run in range(1, repeat + 1):
            floor = self._floor_chords(len(shoppers), rows_per_batch)
            seconds, accepted = self._shoppers_at_once(shoppers, batch_rows(rows_per_batch))
            runs.append(
                {
                    "many_shoppers_s": seconds,
                    "many_shoppers_accept_s": accepted,
                    "many_shoppers_floor_s": floor,
                    "many_shoppers_over_floor": seconds / floor,
                }
            )
            _progress(
                f"{len(shoppers)} shoppers × {rows_per_batch} rows, run {run}/{repeat}: all paid {seconds:.2f}s "
                f"(all accepted {accepted:.2f}s), floor {floor:.2f}s"
            )
        return runs

    def _shoppers_at_once(self, shoppers: list[Shopper], rows: list[dict]) -> tuple[float, float]:
        barrier = threading.Barrier(len(shoppers))

        def submit(shopper: Shopper) -> tuple[str, float, float]:
            barrier.wait()
            try:
                return shopper.submit(rows)
            finally:
                connection.close()  # this thread's own connection

        with ThreadPoolExecutor(max_workers=len(shoppers)) as pool:
            submitted = list(pool.map(submit, shoppers))
        first_post = min(started for _, started, _ in submitted)
        batch_ids = [batch_id for batch_id, _, _ in submitted]
        seconds = wait_for_payments(batch_ids, since=first_post, timeout=60 + len(rows) * len(shoppers) * 0.2)
        return seconds, max(answered for _, _, answered in submitted) - first_post

    def warm_up(self) -> None:
        """Imports, connections and caches of a fresh worker, before anything is recorded."""
        self.floor(WARM_UP_ROWS)
        self.batch(WARM_UP_ROWS)
        self.baseline(3)

    def idle_worker_rss_mb(self) -> float:
        return max(self.worker.rss_kb().values()) / 1024

    # -- in this process ---------------------------------------------------------------------------------

    def placing_statements(self) -> dict:
        """SQL round trips that placing one row costs, counted on the wire (libpq's trace of the connection):
        each row runs as `place_row` in a worker, through the task with its signals (what Celery does around
        it, close_old_connections included) and with the worker's connection settings, on a batch kept from the
        workers. What the ORM never sees (a health check's `SELECT 1`) is counted too."""
        with dispatch_suppressed():
            batch = services.batch_submit(owner=self.shopper.user, rows=batch_rows(STATEMENT_SAMPLE_ROWS)).batch
        per_row = []
        # Run here, the task would log each success as a worker does, into the benchmark's own output.
        with as_in_a_worker(), quiet_logger("celery.app.trace"):
            # A worker process keeps its database connection from task to task (CELERY_DB_REUSE_MAX): the
            # sample starts on a new one, as a worker process does, and keeps it.
            connection.close()
            connection.ensure_connection()
            for row_index in range(STATEMENT_SAMPLE_ROWS):
                with traced(connection) as sent:
                    place_row.apply((str(batch.pk), row_index), throw=True)
                per_row.append(sent)
        # Finish the sample batch as its callback would, so that the database stays consistent.
        services.batch_finalize(batch_id=batch.pk, results=selectors.batch_results_from_database(batch))

        return {
            "rows": STATEMENT_SAMPLE_ROWS,
            # Every round trip: transaction control (BEGIN, SAVEPOINT, RELEASE, COMMIT) and the PREPARE of a
            # statement on a connection's first row too.
            "sql_statements_per_row": mean(len(statements) for statements in per_row),
            "data_statements_per_row": mean(
                sum(not _is_transaction_control(sql) for sql in statements) for statements in per_row
            ),
            "example_row": [_describe(sql) for sql in per_row[-1]],
        }

    def replay_callback(self, batch_id: str) -> dict:
        """The chord callback again, here, on a batch as its callback found it: its time, its SQL
        statements and its peak Python memory (tracemalloc, in a second replay, since tracing slows it)."""
        batch = Batch.objects.get(pk=batch_id)
        # The order array as the chord delivers it: JSON, decoded.
        payload = json.dumps(selectors.batch_results_from_database(batch))
        results = json.loads(payload)
        with as_the_callback_found_it(batch_id), CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            services.batch_finalize(batch_id=batch_id, results=results)
            seconds = time.perf_counter() - started
        with as_the_callback_found_it(batch_id):
            tracemalloc.start()
            try:
                services.batch_finalize(batch_id=batch_id, results=results)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
        return {
            "callback_replay_s": seconds,
            "callback_replay_peak_mb": peak / 2**20,
            # Data statements only: the replay's transaction control differs from the worker's (it is nested).
            "callback_sql_statements": sum(
                not _is_transaction_control(query["sql"]) for query in captured.captured_queries
            ),
            "callback_payload_kb": len(payload.encode()) / 1024,
        }

    # -- one batch size, repeated -------------------------------------------------------------------------

    def size(self, row_count: int, repeat: int) -> list[dict]:
        runs = []
        for run in range(1, repeat + 1):
            figures = {**self.floor(row_count), **self.batch(row_count)}
            figures.update(self.baseline(row_count))
            figures.update(self.replay_callback(figures["batch_id"]))
            figures["place_over_floor"] = figures["place_s"] / figures["floor_s"]
            # How busy the machine's cores were: every CPU counted, against the cores for the time it took.
            figures["cpu_busy_pct"] = _busy_pct(figures, "", row_count, figures["accept_s"] + figures["place_s"])
            figures["floor_cpu_busy_pct"] = _busy_pct(figures, "floor_", row_count, figures["floor_s"])
            figures["baseline_over_batch"] = figures["baseline_s"] / (figures["accept_s"] + figures["place_s"])
            runs.append(figures)
            _progress(
                f"N={row_count} run {run}/{repeat}: accept {figures['accept_s']:.3f}s, "
                f"place {figures['place_s']:.2f}s, floor {figures['floor_s']:.2f}s, "
                f"baseline {figures['baseline_s']:.1f}s"
                + (" (extrapolated)" if figures["baseline_checkouts"] < row_count else "")
            )
        return runs


@contextmanager
def as_the_callback_found_it(batch_id: uuid.UUID | str):
    """The batch back in `placing` without its payment, inside a transaction that is rolled back."""
    with transaction.atomic():
        Payment.objects.filter(batch_id=batch_id).delete()
        Batch.objects.filter(pk=batch_id).update(status=Batch.Status.PLACING, placed_at=None)
        yield
        transaction.set_rollback(True)


@contextmanager
def quiet_logger(name: str):
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


# Statements that neither read nor write data: transaction control, and preparing a statement to execute.
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "PREPARE")


def _is_transaction_control(sql: str) -> bool:
    return sql.lstrip().upper().startswith(TRANSACTION_CONTROL)


def _describe(sql: str) -> str:
    """A statement in a few words: its verb, its table, and whether it locks."""
    if sql.startswith("EXECUTE"):
        return f"EXECUTE {sql.split()[1]} (prepared)"
    if sql.strip().upper() == "SELECT 1":
        return "SELECT 1 (a connection health check)"
    verb = sql.split()[0]
    table = re.search(r'(?:FROM|INTO|UPDATE)\s+"(\w+)"', sql)
    joins = " + join" if " JOIN " in sql else ""
    locks = " FOR UPDATE" if "FOR UPDATE" in sql else ""
    return f"{verb} {table.group(1) if table else ''}{joins}{locks}".strip()


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
