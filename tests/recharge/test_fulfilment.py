"""Fulfilment after the merged payment: top-ups through the sandbox upstream, retries, unknown outcomes and
automatic refunds. Real worker, Redis, PostgreSQL, gateway page and webhook over HTTP."""

from decimal import Decimal

import pytest

from orders.models import Batch, Order
from payments.models import Payment, Refund
from recharge.models import Fulfilment, SandboxTopUp, UpstreamAttempt
from recharge.tasks import fulfil_order
from tests.orders.factories import ProductFactory
from tests.payments.sandbox import gateway_path
from tests.recharge.factories import game_product

MOBILE_OK = ["13800138000", "13912345678", "18612345678", "13012345678", "18912345678", "15312345678", "17012345678"]
ALWAYS_FAILS = ["13800000000", "18600010000"]  # ...0000
FAILS_ONCE = "13900000001"  # ...0001
TIMES_OUT_ONCE = "13900000002"  # ...0002


@pytest.fixture
def site(live_server, worker):
    return live_server


def submit_and_pay(api_client, client, wait_for_batch, wait_until, rows):
    response = api_client.post("/api/v1/batches/", {"rows": rows}, format="json")
    assert response.status_code == 202, response.json()
    batch = wait_for_batch(response.json()["id"])
    payment = Payment.objects.get(batch=batch)
    client.post(gateway_path(payment), {"decision": "pay"})
    wait_until(lambda: Batch.objects.filter(pk=batch.pk, status=Batch.Status.PAID).exists(), timeout=30, what="payment")
    return batch, payment


def settled(batch):
    open_statuses = [Order.Status.PAID, Order.Status.FULFILLING]
    recharge = Order.objects.filter(batch=batch, kind__in=["mobile", "game"])
    return not recharge.filter(status__in=open_statuses).exists()


def test_a_mixed_batch_is_paid_once_fulfilled_and_failed_top_ups_refunded(
    site, api_client, client, wait_for_batch, wait_until
):
    game_product()
    ProductFactory(sku="TSHIRT-M", unit_price=Decimal("59.00"))
    mobile = MOBILE_OK + ALWAYS_FAILS + [FAILS_ONCE]
    rows = (
        [{"kind": "mobile", "phone": phone, "face_value": "50"} for phone in mobile]
        + [
            {"kind": "game", "sku": "GAME-GOLD-60", "account": f"user-12345{i + 1}", "quantity": i + 1}
            for i in range(3)
        ]
        + [{"kind": "goods", "sku": "TSHIRT-M"}, {"kind": "goods", "sku": "TSHIRT-M", "quantity": 2}]
    )
    assert len(mobile) == 10 and len(rows) == 15

    batch, payment = submit_and_pay(api_client, client, wait_for_batch, wait_until, rows)

    # one payment for all fifteen
    assert Order.objects.filter(batch=batch).count() == 15 and payment.allocations.count() == 15
    assert payment.amount == sum(order.amount for order in Order.objects.filter(batch=batch))

    wait_until(lambda: settled(batch), timeout=60, what="every top-up to end and every refund to arrive")

    orders = list(Order.objects.filter(batch=batch))
    failed = [order for order in orders if order.details.get("phone") in ALWAYS_FAILS]
    statuses = {
        order.details.get("phone") or order.details.get("account") or order.product.sku: order.status
        for order in orders
    }
    successful = [order for order in orders if order.status in (Order.Status.FULFILLED, Order.Status.PAID)]
    assert len(successful) == 13
    assert {statuses[phone] for phone in ALWAYS_FAILS} == {Order.Status.REFUNDED}
    assert statuses[FAILS_ONCE] == Order.Status.FULFILLED
    assert {order.status for order in orders if order.kind == "goods"} == {Order.Status.PAID}
    assert {order.status for order in orders if order.kind == "game"} == {Order.Status.FULFILLED}

    # the ...0001 number needed exactly one retry; the ...0000 ones were tried until the last attempt
    fails_once = Fulfilment.objects.get(order__details__phone=FAILS_ONCE)
    assert fails_once.attempts == 2
    assert list(fails_once.upstream_attempts.values_list("outcome", flat=True)) == ["failure", "success"]
    assert set(Fulfilment.objects.filter(order__in=failed).values_list("attempts", flat=True)) == {3}

    payment.refresh_from_db()
    assert payment.status == Payment.Status.PARTIALLY_REFUNDED
    assert payment.refunded_amount == sum(order.amount for order in failed) == Decimal("49.50") + Decimal("49.25")
    assert Refund.objects.filter(payment=payment, status="succeeded").count() == 2


def test_an_unknown_outcome_is_settled_by_a_query_and_never_refunded(
    site, api_client, client, wait_for_batch, wait_until
):
    rows = [{"kind": "mobile", "phone": TIMES_OUT_ONCE, "face_value": "100"}]

    batch, _payment = submit_and_pay(api_client, client, wait_for_batch, wait_until, rows)

    wait_until(lambda: settled(batch), timeout=30, what="the top-up to settle")
    order = Order.objects.get(batch=batch)
    assert order.status == Order.Status.FULFILLED
    calls = list(UpstreamAttempt.objects.filter(fulfilment__order=order).values_list("call", "outcome"))
    assert calls == [("top_up", "unknown"), ("query", "success")]
    assert not Refund.objects.exists()
    assert SandboxTopUp.objects.get(idempotency_key=order.number).performed == 1


def test_a_redelivered_fulfilment_task_never_tops_up_twice(
    site, api_client, client, wait_for_batch, wait_until, wait_for_idle_worker
):
    rows = [{"kind": "mobile", "phone": "13800138000", "face_value": "30"}]
    batch, _ = submit_and_pay(api_client, client, wait_for_batch, wait_until, rows)
    order = Order.objects.get(batch=batch)

    for _ in range(5):  # the broker delivers the task again, e.g. after a worker restart
        fulfil_order.delay(order.pk)

    wait_until(lambda: settled(batch), timeout=30, what="the top-up to settle")
    wait_for_idle_worker()
    assert SandboxTopUp.objects.get(idempotency_key=order.number).performed == 1
    assert Order.objects.get(pk=order.pk).status == Order.Status.FULFILLED


def paid_top_up(user, phone="13800138000"):
    """A paid mobile order, its fulfilment created, no task queued (on_commit never fires in these tests)."""
    from payments.providers import Notification
    from payments.services import notification_apply
    from tests.orders.pipeline import batch_place
    from tests.payments.factories import PaymentAttemptFactory

    batch = batch_place(owner=user, rows=[{"kind": "mobile", "phone": phone, "face_value": "50"}])
    attempt = PaymentAttemptFactory(payment=Payment.objects.get(batch=batch))
    notification_apply(
        provider_name="sandbox",
        notification=Notification(
            event_id="evt-1",
            type="payment.succeeded",
            reference=attempt.reference,
            amount=attempt.amount,
            currency="CNY",
        ),
    )
    return Order.objects.get(batch=batch)


def test_an_attempt_whose_worker_died_after_the_upstream_credited_is_not_credited_again(user):
    from datetime import timedelta

    from django.utils import timezone

    from recharge import services
    from recharge.upstream import get_upstream

    order = paid_top_up(user)
    assert order.status == Order.Status.FULFILLING
    # given: the first attempt reached the upstream, which credited the account, then its worker died
    get_upstream().top_up(idempotency_key=order.number, account="13800138000", amount=order.amount, kind="mobile")
    Fulfilment.objects.filter(order=order).update(
        status=Fulfilment.Status.IN_PROGRESS, attempts=1, updated_at=timezone.now() - timedelta(minutes=10)
    )

    # when: the redelivered task runs
    step = services.fulfilment_attempt(order_id=order.pk)

    # then: the upstream was asked again with the same key and did not credit twice
    assert step == "topped up"
    record = SandboxTopUp.objects.get(idempotency_key=order.number)
    assert (record.calls, record.performed) == (2, 1)
    assert Order.objects.get(pk=order.pk).status == Order.Status.FULFILLED


def test_a_fresh_attempt_in_progress_is_left_to_its_worker(user):
    from recharge import services

    order = paid_top_up(user)
    Fulfilment.objects.filter(order=order).update(status=Fulfilment.Status.IN_PROGRESS, attempts=1)

    assert services.fulfilment_attempt(order_id=order.pk) == "in progress elsewhere"
    assert not SandboxTopUp.objects.exists()


def test_staff_retry_is_refused_for_a_refunded_or_successful_fulfilment(user):
    from recharge import services

    order = paid_top_up(user)
    services.fulfilment_attempt(order_id=order.pk)

    with pytest.raises(services.FulfilmentError) as refused:
        services.fulfilment_retry(order_id=order.pk)
    assert str(refused.value) == "Only a failed top-up whose refund was refused can be retried; this one is succeeded."
