"""Drill 5: the gateway's notifications arrive as a hostile network delivers them: each one 5 times, in a
shuffled order, from 10 threads at once, mixed with 200 forgeries (a genuine body with its amount changed,
or a genuine body under a made-up signature). Each attempt ends as the gateway decided, changing status
once (a paid one pays its payment once; a declined one leaves its payment pending, to be tried again);
every forgery is refused with a 4xx; nothing answers 5xx; the invariants hold.

Real HTTP against the live server; a real worker on the drill's Redis also delivers each notification once
(the sandbox's own delivery task), so every notification arrives at least 6 times.
"""

import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from decimal import Decimal

from django.conf import settings

from orders.models import Batch
from payments import signing
from payments.models import Payment, PaymentAttempt
from payments.sandbox import gateway
from payments.sandbox.models import SandboxNotification
from tests.drills.conftest import assert_invariants_hold
from tests.orders.factories import ProductFactory
from tests.payments.sandbox import WEBHOOK_URL, charge_reference

PAYMENTS = 10
DECLINED = 3  # the gateway declines the last three
DELIVERIES = 5
FORGERIES = 200
THREADS = 10


def deliver_all(url: str, deliveries: list[tuple[bytes, str]]) -> list[int]:
    """POST each (body, signature) from THREADS threads taking turns from one shuffled list; the statuses."""
    statuses: list[int] = [0] * len(deliveries)
    cursor = iter(range(len(deliveries)))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                index = next(cursor, None)
            if index is None:
                return
            body, signature = deliveries[index]
            request = urllib.request.Request(
                url,
                data=body,
                method="POST",
                headers={"Content-Type": "application/json", "Sandbox-Signature": signature},
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    statuses[index] = response.status
            except urllib.error.HTTPError as error:
                statuses[index] = error.code

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def forged(body: bytes, index: int) -> tuple[bytes, str]:
    if index % 2:
        return body, f"t={int(time.time())},v1={random.randbytes(32).hex()}"  # a made-up signature
    event = json.loads(body)
    event["data"]["amount"] = f"{Decimal(event['data']['amount']) * 2:.2f}"  # a changed amount, the old signature
    return json.dumps(event).encode(), signing.sign(settings.SANDBOX_WEBHOOK_SECRET, body)


def test_each_notification_five_times_out_of_order_with_forgeries(
    place_batch, live_server, drill_redis, celery_on, start_worker, figures
):
    random.seed(5)
    ProductFactory(sku="BAG", unit_price=Decimal("12.00"), stock=100)
    celery_on(drill_redis.url, result_backend=drill_redis.url)
    start_worker(drill_redis.url, "drill5-worker")
    payments = [Payment.objects.get(batch=place_batch([{"kind": "goods", "sku": "BAG"}] * 2)) for _ in range(PAYMENTS)]
    for index, payment in enumerate(payments):
        gateway.charge_decide(charge_reference=charge_reference(payment), pay=index < PAYMENTS - DECLINED)
    bodies = [notification.body.encode() for notification in SandboxNotification.objects.order_by("pk")]
    assert len(bodies) == PAYMENTS

    genuine = [(body, signing.sign(settings.SANDBOX_WEBHOOK_SECRET, body)) for body in bodies] * DELIVERIES
    forgeries = [forged(bodies[index % PAYMENTS], index) for index in range(FORGERIES)]
    deliveries = [(delivery, True) for delivery in genuine] + [(delivery, False) for delivery in forgeries]
    random.shuffle(deliveries)

    statuses = deliver_all(live_server.url + WEBHOOK_URL, [delivery for delivery, _ in deliveries])

    genuine_statuses = Counter(status for status, (_, real) in zip(statuses, deliveries, strict=True) if real)
    forged_statuses = Counter(status for status, (_, real) in zip(statuses, deliveries, strict=True) if not real)
    figures(genuine=dict(genuine_statuses), forged=dict(forged_statuses))
    assert set(genuine_statuses) == {200}
    assert all(400 <= status < 500 for status in forged_statuses)
    for index, payment in enumerate(payments):
        payment.refresh_from_db()
        paid = index < PAYMENTS - DECLINED
        attempt = payment.attempts.get()
        assert attempt.status == (PaymentAttempt.Status.SUCCEEDED if paid else PaymentAttempt.Status.DECLINED)
        assert attempt.status_changes.filter(new_status=attempt.status).count() == 1
        assert payment.status == (Payment.Status.SUCCEEDED if paid else Payment.Status.PENDING)
        assert payment.status_changes.filter(new_status=Payment.Status.SUCCEEDED).count() == (1 if paid else 0)
        assert payment.amount == Decimal("24.00")  # a forged amount changed nothing
        batch_status = Batch.objects.get(pk=payment.batch_id).status
        assert batch_status == (Batch.Status.PAID if paid else Batch.Status.AWAITING_PAYMENT)
    assert_invariants_hold()
