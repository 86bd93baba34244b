"""Drill 6: concurrency at the door. Twenty clients send the same batch with one Idempotency-Key at the
same moment: one batch exists, every answer names it (202, a replay) or refuses (409), none fails. Ten
shoppers race for the last unit of a product: exactly one gets an order, the nine others a failed row.

Real HTTP against the live server (one thread per request), a real worker on the drill's Redis.
"""

import json
import threading
import time
import urllib.error
import urllib.request
from decimal import Decimal

from rest_framework.authtoken.models import Token

from orders.models import Batch, Order, Product
from tests.drills.conftest import assert_invariants_hold, wait_for_payments
from tests.factories import UserFactory
from tests.orders.factories import ProductFactory

BATCHES_URL = "/api/v1/batches/"


def post_at_once(url: str, requests: list[tuple[str, dict, dict]]) -> list[tuple[int, dict, float]]:
    """POST every (token, body, headers) from a thread of its own, all released together; (status, body, seconds)."""
    barrier = threading.Barrier(len(requests))
    answers: list = [None] * len(requests)

    def post(index: int, token: str, body: dict, headers: dict) -> None:
        request = urllib.request.Request(
            url,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Token {token}", **headers},
        )
        barrier.wait()
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, text = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read()
        answers[index] = (status, json.loads(text or b"{}"), time.monotonic() - started)

    threads = [threading.Thread(target=post, args=(index, *request)) for index, request in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_twenty_concurrent_submissions_with_one_idempotency_key(
    live_server, drill_redis, celery_on, start_worker, wait_until, figures
):
    ProductFactory(sku="MUG", unit_price=Decimal("8.00"), stock=1000)
    user = UserFactory()
    token = Token.objects.create(user=user).key
    celery_on(drill_redis.url, result_backend=drill_redis.url)
    start_worker(drill_redis.url, "drill6-worker")
    body = {"rows": [{"kind": "goods", "sku": "MUG", "quantity": 2}] * 3}

    posted_at = time.monotonic()
    answers = post_at_once(live_server.url + BATCHES_URL, [(token, body, {"Idempotency-Key": "drill-6"})] * 20)

    statuses = sorted(status for status, _, _ in answers)
    assert set(statuses) <= {202, 409}, answers
    assert {body["id"] for status, body, _ in answers if status == 202} == {
        str(Batch.objects.get(owner=user, idempotency_key="drill-6").pk)
    }
    assert Batch.objects.filter(owner=user).count() == 1
    batch = Batch.objects.get(owner=user)
    recovery = wait_for_payments(wait_until, [batch.pk], since=posted_at, timeout=60)
    assert Order.objects.filter(batch=batch).count() == 3
    assert Product.objects.get(sku="MUG").stock == 1000 - 6
    figures(
        statuses={status: statuses.count(status) for status in set(statuses)},
        slowest_request_s=max(seconds for _, _, seconds in answers),
        submission_to_payment_s=recovery,
    )
    assert_invariants_hold()


def test_ten_shoppers_race_for_the_last_unit(live_server, drill_redis, celery_on, start_worker, wait_until, figures):
    product = ProductFactory(sku="LAST-ONE", unit_price=Decimal("99.00"), stock=1)
    shoppers = [UserFactory() for _ in range(10)]
    tokens = [Token.objects.create(user=shopper).key for shopper in shoppers]
    celery_on(drill_redis.url, result_backend=drill_redis.url)
    start_worker(drill_redis.url, "drill6-race-worker")

    answers = post_at_once(
        live_server.url + BATCHES_URL,
        [(token, {"rows": [{"kind": "goods", "sku": "LAST-ONE"}]}, {}) for token in tokens],
    )

    assert [status for status, _, _ in answers] == [202] * 10, answers
    batch_ids = [body["id"] for _, body, _ in answers]
    wait_until(
        lambda: not Batch.objects.filter(pk__in=batch_ids, status=Batch.Status.PLACING).exists(),
        timeout=60,
        what="every shopper's batch to finish placing",
    )
    orders = Order.objects.filter(product=product)
    assert orders.count() == 1
    assert Batch.objects.filter(pk__in=batch_ids, status=Batch.Status.AWAITING_PAYMENT).count() == 1
    assert Batch.objects.filter(pk__in=batch_ids, status=Batch.Status.FAILED).count() == 9
    assert Product.objects.get(pk=product.pk).stock == 0
    figures(winners=orders.count(), slowest_request_s=max(seconds for _, _, seconds in answers))
    assert_invariants_hold()
