"""Drill 7: the database drops connections (`pg_terminate_backend` on every connection but the killer's,
twice a second for 10 s) while a batch is being placed. The worker's tasks retry the transient errors,
the batch reaches its merged payment, and the invariants hold. Meanwhile the API, whose own connection is
cut too, answers 503 with a JSON body (come back in a few seconds) — never a 500.
"""

import threading
import time
from decimal import Decimal

import psycopg
from django.db import connection

from orders import services
from orders.models import BatchRow, Order
from tests.drills.conftest import assert_invariants_hold, wait_for_payments
from tests.orders.factories import ProductFactory

ROWS = 400
FLAPPING_SECONDS = 10


def terminate_others(database_url: str, stop: threading.Event, counts: list[int]) -> None:
    with psycopg.connect(database_url, autocommit=True) as killer:
        while not stop.is_set():
            row = killer.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
            counts.append(row[0] if row else 0)
            stop.wait(0.5)


def test_database_connections_terminated_for_10_s_during_a_batch(
    user, api_client, drill_redis, celery_on, start_worker, start_beat, test_database_url, wait_until, figures
):
    ProductFactory(sku="CUP", unit_price=Decimal("4.00"), stock=ROWS)
    celery_on(drill_redis.url, result_backend=drill_redis.url)
    start_worker(drill_redis.url, "drill7-worker")
    start_beat(drill_redis.url, "drill7-beat")
    submitted_at = time.monotonic()
    batch = services.batch_submit(owner=user, rows=[{"kind": "goods", "sku": "CUP"}] * ROWS).batch
    wait_until(lambda: batch.rows.filter(outcome=BatchRow.Outcome.PLACED).exists(), timeout=60, what="placing to start")

    # when: every connection to the database is cut twice a second for 10 s
    placed_at_start = batch.rows.filter(outcome=BatchRow.Outcome.PLACED).count()
    stop, counts = threading.Event(), list[int]()
    killer = threading.Thread(target=terminate_others, args=(test_database_url, stop, counts))
    started = time.monotonic()
    killer.start()
    api_statuses = []
    try:
        while time.monotonic() - started < FLAPPING_SECONDS:
            response = api_client.get(f"/api/v1/batches/{batch.pk}/")
            api_statuses.append(response.status_code)
            if response.status_code == 503:
                assert response.json()["code"] == "database_unavailable"
                assert response["Retry-After"]
                connection.close()  # what Django does at the end of a real request with a broken connection
            time.sleep(0.2)
    finally:
        stop.set()
        killer.join()
        connection.close()  # the test's own connection was cut too
    ended_at = time.monotonic()

    # then: the batch completes, every row placed once; the API never answered 500
    total = wait_for_payments(wait_until, [batch.pk], since=submitted_at, timeout=120)
    figures(
        placed_when_flapping_began=f"{placed_at_start}/{ROWS}",
        connections_terminated=sum(counts),
        api_answers={status: api_statuses.count(status) for status in sorted(set(api_statuses))},
        submission_to_payment_s=total,
        flapping_end_to_payment_s=max(0.0, submitted_at + total - ended_at),
    )
    assert placed_at_start < ROWS  # the flapping began mid-batch
    assert set(api_statuses) <= {200, 503}
    assert 503 in api_statuses  # the API's own connection was cut, and said so properly
    assert sum(counts) > 0
    assert batch.rows.filter(outcome=BatchRow.Outcome.PLACED).count() == ROWS
    assert Order.objects.filter(batch=batch).count() == ROWS
    assert_invariants_hold()
