"""Drill 2: Redis crashes in the middle of a batch and comes back empty 5 s later, while shoppers keep
submitting. Every submission during the outage is answered at once (202: the work is in the outbox), and
once Redis is back every batch reaches its merged payment within 60 s with the default recovery settings:
the outbox sweeper (beat, every 2 s) dispatches the batches submitted during the outage, and stuck
detection (no progress for BATCH_PLACING_TIMEOUT_SECONDS, beat every 5 s) re-drives the one whose
queued rows and chord died with Redis.

A real `celery beat` runs beside the worker, on the drill's Redis, with the project's schedule.
"""

import time
from decimal import Decimal

from orders.models import Batch, BatchRow
from tests.drills.conftest import assert_invariants_hold, wait_for_payments
from tests.orders.factories import ProductFactory

BATCHES_URL = "/api/v1/batches/"
BIG_BATCH_ROWS = 200
SUBMISSIONS_DURING_OUTAGE = 10
OUTAGE_SECONDS = 5


def redis_cache(url: str) -> dict:
    # Production counts its throttles in the same Redis as the broker: it goes down with it.
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "batchpay",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }


def test_redis_crash_mid_batch_with_submissions_during_the_outage(
    api_client, client, drill_redis, celery_on, start_worker, start_beat, wait_until, figures, settings
):
    ProductFactory(sku="TEA", unit_price=Decimal("3.00"), stock=10_000)
    celery_on(drill_redis.url, result_backend=drill_redis.url)
    worker = start_worker(drill_redis.url, "drill2-worker")
    start_beat(drill_redis.url, "drill2-beat")
    settings.CACHES = redis_cache(drill_redis.url)  # after starting them: the override hides SETTINGS_MODULE

    # given: a batch being placed
    response = api_client.post(BATCHES_URL, {"rows": [{"kind": "goods", "sku": "TEA"}] * BIG_BATCH_ROWS}, format="json")
    assert response.status_code == 202, response.content
    big = Batch.objects.get(pk=response.json()["id"])
    wait_until(
        lambda: big.rows.filter(outcome=BatchRow.Outcome.PLACED).count() >= BIG_BATCH_ROWS // 10,
        timeout=60,
        interval=0.02,
        what="the first tenth of the batch to be placed",
    )

    # when: Redis crashes; shoppers go on submitting; Redis comes back empty on the same port
    drill_redis.kill()
    killed_at = time.monotonic()
    placed_at_kill = big.rows.filter(outcome=BatchRow.Outcome.PLACED).count()
    durations, statuses, submitted = [], [], []
    for index in range(SUBMISSIONS_DURING_OUTAGE):
        started = time.monotonic()
        response = api_client.post(
            BATCHES_URL, {"rows": [{"kind": "goods", "sku": "TEA", "quantity": index % 3 + 1}] * 5}, format="json"
        )
        durations.append(time.monotonic() - started)
        statuses.append(response.status_code)
        if response.status_code == 202:
            submitted.append(response.json()["id"])
    started = time.monotonic()
    health = client.get("/healthz")
    health_seconds = time.monotonic() - started
    time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - killed_at)))
    drill_redis.start_again()
    back_at = time.monotonic()
    # kombu 5.7 sometimes dies of its own reconnect ("Unrecoverable error: AttributeError: 'NoneType' object
    # has no attribute 'hostname'" in the Redis channel's close): the process supervisor starts it again.
    worker_died = not worker.is_running()
    if worker_died:
        start_worker(drill_redis.url, "drill2-worker-restarted")

    # then: every request answered 202 within 2 s; every batch reaches its payment within 60 s of Redis's return
    recovery = wait_for_payments(wait_until, [big.pk, *submitted], since=back_at, timeout=90)
    figures(
        placed_at_kill=f"{placed_at_kill}/{BIG_BATCH_ROWS}",
        slowest_request_s=max(durations),
        statuses=sorted(set(statuses)),
        healthz_s=health_seconds,
        redis_back_to_last_payment_s=recovery,
        worker_died_and_restarted=worker_died,
    )
    assert statuses == [202] * SUBMISSIONS_DURING_OUTAGE
    assert max(durations) < 2
    assert health.status_code == 503 and health.json()["checks"]["broker"] == "down"
    assert health_seconds < 2
    assert recovery <= 60
    assert big.rows.filter(outcome=BatchRow.Outcome.PLACED).count() == BIG_BATCH_ROWS
    assert_invariants_hold()
