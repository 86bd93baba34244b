"""Drill 3: the worker dies (SIGKILL, pool children too) while it fulfils 20 paid top-ups, two of them in
the middle of the upstream call. A new worker starts. Every top-up ends fulfilled, credited exactly once
upstream, with the default re-drive delay (RECHARGE_REDRIVE_AFTER_SECONDS=60): the queued ones run at once,
the two the dead worker held are re-driven once their step is overdue (a sweep queued when the new worker
starts, and beat every 15 s).

To kill at that moment without guessing, the test locks the sandbox upstream's table: both pool processes
stop inside an upstream call, each with its fulfilment marked in progress.
"""

import time

import psycopg

from orders.models import Batch, Order
from payments.models import Payment
from recharge.models import Fulfilment, SandboxTopUp
from tests.drills.conftest import assert_invariants_hold
from tests.orders.test_worker_crash import sessions_waiting_for_a_lock
from tests.payments.sandbox import pay_at_gateway

TOP_UPS = 20


def test_worker_killed_during_fulfilment_of_20_paid_top_ups(
    client, carrier_discounts, place_batch, live_server, drill_redis, celery_on, start_worker, start_beat,
    test_database_url, wait_until, figures,
):  # fmt: skip
    celery_on(drill_redis.url, result_backend=drill_redis.url)
    phones = [f"1391234{index:04d}" for index in range(1000, 1000 + TOP_UPS)]
    batch = place_batch([{"kind": "mobile", "phone": phone, "face_value": "30"} for phone in phones])
    payment = Payment.objects.get(batch=batch)
    doomed = start_worker(drill_redis.url, "drill3-doomed")
    start_beat(drill_redis.url, "drill3-beat")

    # given: the batch paid, and both of the worker's processes inside an upstream top-up call
    with psycopg.connect(test_database_url) as lock_holder:
        lock_holder.execute("LOCK TABLE recharge_sandboxtopup IN EXCLUSIVE MODE")
        pay_at_gateway(client, payment)
        assert Batch.objects.get(pk=batch.pk).status == Batch.Status.PAID
        wait_until(
            lambda: sessions_waiting_for_a_lock() == doomed.concurrency,
            timeout=60,
            what="both worker processes to be inside an upstream call",
        )
        in_progress = Fulfilment.objects.filter(order__batch=batch, status=Fulfilment.Status.IN_PROGRESS).count()

        # when: the worker dies; the upstream answers again; a new worker starts
        doomed.kill()
        killed_at = time.monotonic()
        lock_holder.rollback()
    start_worker(drill_redis.url, "drill3-fresh")
    ready_at = time.monotonic()

    # then: every top-up fulfilled, each credited once upstream
    wait_until(
        lambda: Order.objects.filter(batch=batch, status=Order.Status.FULFILLED).count() == TOP_UPS,
        timeout=150,
        interval=0.2,
        what="every top-up fulfilled",
    )
    recovery = time.monotonic() - ready_at
    figures(
        in_progress_at_kill=in_progress,
        worker_ready_to_all_fulfilled_s=recovery,
        kill_to_all_fulfilled_s=time.monotonic() - killed_at,
    )
    assert in_progress == doomed.concurrency
    assert SandboxTopUp.objects.count() == TOP_UPS
    assert set(SandboxTopUp.objects.values_list("performed", flat=True)) == {1}
    assert recovery <= 90  # the 60 s re-drive delay, plus beat's 15 s period, plus the work
    assert_invariants_hold()
