"""The Alipay rail end to end: the shopper's pay page, the signed redirect to the (fake) Alipay cashier, Alipay's
notifications over HTTP to the site's webhook (pytest-django's live server, at SITE_URL), and the jobs of a real
Celery worker started with the fake gateway's settings (on a Redis of the test's own). Real PostgreSQL throughout.

The fake gateway checks every request's RSA2 signature with the shop's public key and signs what it sends with
Alipay's key: tests/payments/fakes/alipay.py.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from config.celery import app as celery_app
from orders.models import Batch, Order, OrderStatusChange
from payments.models import GatewayEvent, Payment, PaymentAttempt, Refund
from tests.conftest import _start_worker
from tests.factories import UserFactory
from tests.orders.factories import ProductFactory
from tests.payments.e2e.alipay_helpers import (
    DESKTOP,
    PHONE,
    choose,
    pay_page,
    press_pay_at_cashier,
    signed_parameters,
)
from tests.payments.fakes.wechat import wechat_pay_fake
from tests.support.services import PrivateRedis

WEBHOOK_PATH = "/payments/webhooks/alipay/"


@pytest.fixture(scope="module")
def alipay_broker(django_db_setup, alipay_gateway):
    """A Redis of this module's own and a worker on it with the Alipay fake's settings (the session's shared
    worker knows nothing of the fake); one for the module, since starting a worker takes seconds."""
    redis = PrivateRedis()
    broker = redis.start()
    worker = _start_worker(broker, "alipay-e2e", **alipay_gateway.environ())
    yield broker
    worker.stop()
    redis.stop()


@pytest.fixture
def alipay(live_server, transactional_db, fake_alipay, alipay_broker, celery_on, wait_for_idle_worker):
    """The fake Alipay gateway, the site's webhook at SITE_URL (the live server), and this process's tasks sent
    to the module's worker."""
    celery_on(alipay_broker)
    yield fake_alipay
    # The worker may still be mailing a receipt: flushing the tables under it can deadlock with it.
    wait_for_idle_worker()


def notify(fake, out_trade_no, **options) -> tuple[int, bytes]:
    """Alipay's notification of the trade's current status, POSTed over HTTP to the notify URL we gave it."""
    return fake.post_notification(fake.payment_notification(out_trade_no, **options))


def paid_once(payment: Payment) -> PaymentAttempt:
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SUCCEEDED
    assert payment.batch.status == Batch.Status.PAID
    succeeded = payment.attempts.filter(status=PaymentAttempt.Status.SUCCEEDED)
    assert succeeded.count() == 1
    return succeeded.get()


def test_a_20_order_batch_paid_through_the_alipay_cashier(alipay, api_client, client, wait_for_batch):
    ProductFactory(sku="CARD", unit_price=Decimal("4.35"))
    rows = [{"kind": "goods", "sku": "CARD", "quantity": index % 4 + 1} for index in range(20)]
    response = api_client.post("/api/v1/batches/", {"rows": rows}, format="json")
    assert response.status_code == 202, response.json()
    batch = wait_for_batch(response.json()["id"])  # placed by the worker
    payment = Payment.objects.get(batch=batch)
    assert batch.orders.count() == 20
    assert payment.amount == Decimal("4.35") * sum(index % 4 + 1 for index in range(20))

    # Alipay is configured, so it is offered (and the sandbox is not): page pay to a computer, wap to a phone.
    desktop, phone = pay_page(client, payment, user_agent=DESKTOP), pay_page(client, payment, user_agent=PHONE)
    assert 'value="alipay:page"' in desktop and 'value="alipay:wap"' not in desktop
    assert 'value="alipay:wap"' in phone and 'value="alipay:page"' not in phone
    assert "sandbox:" not in desktop + phone

    attempt, cashier_url = choose(client, payment, "alipay:page")
    params, biz = signed_parameters(cashier_url)
    assert cashier_url.startswith(alipay.url + "?")
    assert (params["method"], params["app_id"], params["sign_type"]) == ("alipay.trade.page.pay", alipay.app_id, "RSA2")
    assert params["notify_url"] == settings.SITE_URL + WEBHOOK_PATH
    assert (biz["out_trade_no"], biz["total_amount"]) == (attempt.reference, f"{payment.amount:.2f}")
    # The fake checks the signature before it shows its cashier.
    status, cashier = alipay.open(cashier_url)
    assert status == 200, cashier
    assert attempt.reference in cashier and f"¥{payment.amount:.2f}" in cashier

    alipay.pay(attempt.reference)
    assert notify(alipay, attempt.reference) == (200, b"success")

    succeeded = paid_once(payment)
    assert (
        succeeded.reference == attempt.reference
        and succeeded.transaction_id == alipay.trades[attempt.reference].trade_no
    )
    assert set(batch.orders.values_list("status", flat=True)) == {Order.Status.PAID}
    assert GatewayEvent.objects.filter(payment=payment).count() == 1

    # Alipay delivers the same notification again (same notify_id, a new notify_time): answered, nothing changes.
    audit = OrderStatusChange.objects.filter(order__batch=batch).count()
    assert notify(alipay, attempt.reference) == (200, b"success")
    assert OrderStatusChange.objects.filter(order__batch=batch).count() == audit
    assert GatewayEvent.objects.filter(payment=payment).count() == 1
    assert paid_once(payment).pk == attempt.pk
    assert not Refund.objects.filter(payment=payment).exists()


@pytest.mark.parametrize("forge", ["signature", "total_amount", "app_id", "seller_id"])
def test_a_forged_notification_is_refused_and_changes_nothing(alipay, client, placed_batch, forge):
    payment = Payment.objects.get(batch=placed_batch())
    attempt, cashier_url = choose(client, payment, "alipay:page")
    assert alipay.open(cashier_url)[0] == 200
    alipay.pay(attempt.reference)  # really paid at Alipay: only the forged word about it reaches us

    assert notify(alipay, attempt.reference, forge=forge) == (200, b"fail")

    payment.refresh_from_db()
    attempt.refresh_from_db()
    assert (payment.status, attempt.status) == (Payment.Status.PENDING, PaymentAttempt.Status.OPEN)
    assert payment.batch.status == Batch.Status.AWAITING_PAYMENT
    assert not GatewayEvent.objects.exists()

    # Alipay's genuine notification still pays it.
    assert notify(alipay, attempt.reference) == (200, b"success")
    paid_once(payment)


def test_a_notification_with_an_old_notify_time_is_the_same_event(alipay, client, placed_batch):
    """Alipay's notifications carry no timestamp to check against replay, unlike WeChat Pay's headers: notify_time
    is when this delivery was made, and Alipay retries one notification for 25 hours (8 times), keeping its
    notify_id. So a day-old notify_time is a genuine late retry: it is accepted, and the notify_id (our event id)
    makes any replay of it a duplicate that changes nothing."""
    payment = Payment.objects.get(batch=placed_batch())
    attempt, cashier_url = choose(client, payment, "alipay:page")
    alipay.open(cashier_url)
    alipay.pay(attempt.reference)
    a_day_ago = timezone.now() - timedelta(hours=24)

    assert notify(alipay, attempt.reference, notify_time=a_day_ago) == (200, b"success")
    paid_once(payment)

    assert notify(alipay, attempt.reference, notify_time=a_day_ago - timedelta(hours=1)) == (200, b"success")
    assert GatewayEvent.objects.filter(payment=payment).count() == 1
    assert paid_once(payment).pk == attempt.pk


def test_closed_on_alipay_then_paid_with_wechat_pay(
    live_server, fake_alipay, settings, private_redis, celery_on, start_worker, client, placed_batch
):
    with wechat_pay_fake(settings) as wechat:
        # Both rails configured, in this process and in a worker of the test's own.
        broker = private_redis()
        celery_on(broker)
        start_worker(broker, "alipay-wechat-e2e", **fake_alipay.environ(), **wechat.environment())
        payment = Payment.objects.get(batch=placed_batch())
        page = pay_page(client, payment)
        assert 'value="alipay:page"' in page and 'value="wechat:native"' in page

        first, cashier_url = choose(client, payment, "alipay:page")
        assert fake_alipay.open(cashier_url)[0] == 200
        fake_alipay.close_trade(first.reference)  # the shopper gave up: Alipay closes the trade and says so
        assert notify(fake_alipay, first.reference) == (200, b"success")

        first.refresh_from_db()
        payment.refresh_from_db()
        assert first.status == PaymentAttempt.Status.DECLINED
        assert (payment.status, payment.batch.status) == (Payment.Status.PENDING, Batch.Status.AWAITING_PAYMENT)
        assert "Payment declined — try again." in pay_page(client, payment)

        second, qr_page = choose(client, payment, "wechat:native")
        assert second.provider == "wechat" and second.reference != first.reference
        assert 'id="qr-code"' in client.get(qr_page).content.decode()
        assert wechat.mark_paid(second.reference).post().status_code == 204

        assert paid_once(payment).pk == second.pk
        assert list(payment.attempts.order_by("created_at").values_list("status", flat=True)) == [
            PaymentAttempt.Status.DECLINED,
            PaymentAttempt.Status.SUCCEEDED,
        ]
        assert not Refund.objects.exists()


def test_a_second_success_is_refunded_through_alipay_and_flagged(alipay, client, placed_batch, wait_until):
    payment = Payment.objects.get(batch=placed_batch())
    first, page_url = choose(client, payment, "alipay:page")
    # The shopper also opened the payment on their phone, and paid there too.
    second, wap_url = choose(client, payment, "alipay:wap", user_agent=PHONE)
    assert signed_parameters(wap_url)[0]["method"] == "alipay.trade.wap.pay"
    for url in (page_url, wap_url):
        assert alipay.open(url)[0] == 200
    alipay.pay(first.reference)
    assert notify(alipay, first.reference) == (200, b"success")

    # On the phone, they press pay at the cashier: Alipay notifies the site and sends the browser back to it.
    back = press_pay_at_cashier(wap_url, alipay.open(wap_url)[1])
    assert back.startswith(settings.SITE_URL + reverse("payments:return", args=[payment.reference]) + "?")

    assert paid_once(payment).pk == first.pk
    second.refresh_from_db()
    assert second.status == PaymentAttempt.Status.UNHONOURED and second.needs_attention
    assert payment.needs_attention
    wait_until(
        lambda: Refund.objects.filter(attempt=second, status=Refund.Status.SUCCEEDED).exists(),
        timeout=30,
        what="the second capture to be refunded",
    )
    [asked] = alipay.refund_requests()
    assert asked.biz["out_trade_no"] == second.reference
    assert Decimal(asked.biz["refund_amount"]) == second.amount == payment.amount
    refund = Refund.objects.select_related("request").get(attempt=second)
    assert refund.request is not None
    assert (refund.kind, asked.biz["out_request_no"]) == ("unhonoured", refund.request.reference)
    assert alipay.trades[second.reference].refunded == payment.amount
    assert alipay.trades[first.reference].refunded == 0

    # Alipay's notification of the second trade again: still one refund.
    assert notify(alipay, second.reference) == (200, b"success")
    assert len(alipay.refund_requests()) == 1 and Refund.objects.count() == 1


def test_one_orders_share_refunded_as_a_partial_alipay_refund(alipay, client, placed_batch, wait_until):
    payment = Payment.objects.get(batch=placed_batch(("10.00", "25.50", "30.00")))
    attempt, cashier_url = choose(client, payment, "alipay:page")
    alipay.open(cashier_url)
    alipay.pay(attempt.reference)
    assert notify(alipay, attempt.reference) == (200, b"success")
    paid_once(payment)
    order = payment.batch.orders.order_by("row_index")[1]
    staff = APIClient()
    staff.force_authenticate(UserFactory(is_staff=True))

    response = staff.post(f"/api/v1/payments/{payment.pk}/refunds/", {"order": order.pk}, format="json")

    assert response.status_code == 201, response.json()
    # The share waits its grouping window, then the worker asks Alipay for it as a request of its own.
    wait_until(
        lambda: Refund.objects.filter(order=order, status=Refund.Status.SUCCEEDED).exists(),
        timeout=30,
        what="the share to be refunded",  # Alipay's signed answer said fund_change=Y
    )
    refund = Refund.objects.select_related("request").get(order=order)
    assert refund.request is not None
    [asked] = alipay.refund_requests()
    assert asked.biz["out_trade_no"] == attempt.reference
    assert (asked.biz["out_request_no"], Decimal(asked.biz["refund_amount"])) == (
        refund.request.reference,
        Decimal("25.50"),
    )
    order.refresh_from_db()
    payment.refresh_from_db()
    assert order.status == Order.Status.REFUNDED
    assert (payment.status, payment.refunded_amount) == (Payment.Status.PARTIALLY_REFUNDED, Decimal("25.50"))
    assert set(payment.batch.orders.exclude(pk=order.pk).values_list("status", flat=True)) == {Order.Status.PAID}

    # Alipay's refund notification, which the refund query confirms: answered, applied already, nothing changes.
    assert alipay.post_notification(alipay.refund_notification(attempt.reference, refund.request.reference)) == (
        200,
        b"success",
    )
    payment.refresh_from_db()
    assert payment.refunded_amount == Decimal("25.50") and len(alipay.refund_requests()) == 1


def test_expiry_closes_the_alipay_trade_and_a_late_success_is_refunded(alipay, client, placed_batch, wait_until):
    payment = Payment.objects.get(batch=placed_batch())
    attempt, cashier_url = choose(client, payment, "alipay:page")
    alipay.open(cashier_url)
    Payment.objects.filter(pk=payment.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    celery_app.send_task("payments.tasks.expire_unpaid_payments")  # as beat does

    wait_until(
        lambda: any(
            r.api == "alipay.trade.close" and r.biz["out_trade_no"] == attempt.reference for r in alipay.requests
        ),
        timeout=60,
        what="the worker to close the trade at Alipay",
    )
    payment.refresh_from_db()
    attempt.refresh_from_db()
    assert (payment.status, attempt.status) == (Payment.Status.EXPIRED, PaymentAttempt.Status.CLOSED)
    assert alipay.trades[attempt.reference].status == "TRADE_CLOSED"
    # Alipay's word that the trade is closed tells nothing new.
    assert notify(alipay, attempt.reference) == (200, b"success")
    attempt.refresh_from_db()
    assert attempt.status == PaymentAttempt.Status.CLOSED and not attempt.needs_attention

    # The shopper's payment crossed the close: Alipay took the money all the same and says so.
    alipay.pay(attempt.reference, late=True)
    assert notify(alipay, attempt.reference) == (200, b"success")

    payment.refresh_from_db()
    attempt.refresh_from_db()
    assert payment.status == Payment.Status.EXPIRED and payment.batch.status == Batch.Status.EXPIRED
    assert attempt.status == PaymentAttempt.Status.UNHONOURED
    assert payment.needs_attention and attempt.needs_attention
    [asked] = wait_until(alipay.refund_requests, timeout=30, what="the worker to ask Alipay for the refund")
    assert (asked.biz["out_trade_no"], Decimal(asked.biz["refund_amount"])) == (attempt.reference, payment.amount)
    wait_until(
        lambda: Refund.objects.get(attempt=attempt).status == Refund.Status.SUCCEEDED,
        timeout=30,
        what="Alipay's answer, that the money went back, to be applied",
    )

    # The same late notification again: the money went back once.
    assert notify(alipay, attempt.reference, trade_status="TRADE_SUCCESS") == (200, b"success")
    assert len(alipay.refund_requests()) == 1 and Refund.objects.count() == 1


def test_a_refund_alipay_could_not_make_is_asked_again_with_the_same_number(alipay, client, placed_batch, wait_until):
    payment = Payment.objects.get(batch=placed_batch(("10.00", "25.50")))
    attempt, cashier_url = choose(client, payment, "alipay:page")
    alipay.open(cashier_url)
    alipay.pay(attempt.reference)
    assert notify(alipay, attempt.reference) == (200, b"success")
    order = payment.batch.orders.order_by("row_index")[0]
    staff = APIClient()
    staff.force_authenticate(UserFactory(is_staff=True))
    alipay.fail_next_refunds(1, "ACQ.SYSTEM_ERROR")

    response = staff.post(f"/api/v1/payments/{payment.pk}/refunds/", {"order": order.pk}, format="json")

    assert (response.status_code, response.json()["status"]) == (201, "pending")
    refund = Refund.objects.get(order=order)
    assert alipay.trades[attempt.reference].refunded == 0
    # A minute on, the worker's sweep asks Alipay again (as beat has it do every few minutes).
    Refund.objects.filter(pk=refund.pk).update(created_at=timezone.now() - timedelta(minutes=2))
    celery_app.send_task("payments.tasks.request_unanswered_refunds")

    wait_until(
        lambda: Refund.objects.filter(pk=refund.pk, status=Refund.Status.SUCCEEDED).exists(),
        timeout=60,
        what="the worker to ask for the refund again",
    )
    first, second = alipay.refund_requests()
    refund.refresh_from_db()
    assert refund.request is not None
    assert first.biz["out_request_no"] == second.biz["out_request_no"] == refund.request.reference
    assert alipay.trades[attempt.reference].refunded == Decimal("10.00")
    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED
