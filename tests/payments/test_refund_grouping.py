"""Refunds within the rails' limits: order refunds that fall due together go to the rail as one refund request.

WeChat Pay takes at most 50 refunds of one payment: the end-to-end tests run the real worker against the fake
WeChat Pay server, with the payment's and the refunds' notifications delivered to the real webhook (the live
server). The budget policy is shown in the test process, on the tests' own rail given a small limit.
"""

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from orders.invariants import invariants_check
from orders.models import Order, OutboxMessage
from payments import messages, services
from payments.models import Payment, Refund, RefundRequest
from tests.factories import UserFactory
from tests.invariants import found
from tests.payments.fakes.wechat import wechat_pay_fake
from tests.payments.test_attempts import paid

WINDOW = timedelta(seconds=1)  # what the worker is told (PAYMENT_REFUND_GROUPING_SECONDS)


def assert_invariants_hold():
    report = invariants_check()
    assert report.ok, report.summary()


# --- End to end: WeChat Pay's fake, the real worker, the real webhook ---------------------------------------


@pytest.fixture
def wechat(settings, live_server, private_redis, celery_on, start_worker):
    """The fake WeChat Pay (refusing a payment's refund requests less than a window apart, as WeChat Pay wants a
    minute), and a worker of the test's own that talks to it and groups refunds within a window."""
    with wechat_pay_fake(settings, refund_spacing=WINDOW.total_seconds()) as fake:
        broker = private_redis()
        celery_on(broker, result_backend=broker)
        start_worker(
            broker,
            "grouping-worker",
            **fake.environment(),
            PAYMENT_REFUND_GROUPING_SECONDS=str(WINDOW.total_seconds()),
        )
        yield fake


def paid_on_wechat(fake, placed_batch, prices):
    """A batch paid through the fake: its native checkout, the shopper pays, the notification to our webhook."""
    batch = placed_batch(prices=prices)
    attempt = services.attempt_start(
        payment_reference=batch.payment.reference, provider_name="wechat", method="native", client_ip="127.0.0.1"
    )
    assert attempt.qr_text.startswith("weixin://")
    assert fake.mark_paid(attempt.reference).post().status_code == 204
    payment = Payment.objects.get(pk=batch.payment.pk)
    assert payment.status == Payment.Status.SUCCEEDED
    return payment


def staff_refunds(payment, orders, *, pause_every=0):
    """Staff refund the orders one by one through the API, as they would from a list."""
    staff = APIClient()
    staff.force_authenticate(UserFactory(is_staff=True))
    for count, order in enumerate(orders, start=1):
        response = staff.post(f"/api/v1/payments/{payment.pk}/refunds/", {"order": order.pk}, format="json")
        assert response.status_code == 201, response.json()
        assert response.json()["status"] == "pending"
        if pause_every and count % pause_every == 0:
            time.sleep(WINDOW.total_seconds() + 0.5)  # the next ones fall due after this window closed


def all_acknowledged(payment):
    return not Refund.objects.filter(payment=payment, requested_at__isnull=True).exists()


def test_sixty_orders_refunded_one_by_one_on_wechat_pay_use_at_most_50_refund_requests(
    wechat, placed_batch, wait_until, api_client
):
    prices = [f"{1 + index % 7}.{index % 10}0" for index in range(60)]
    payment = paid_on_wechat(wechat, placed_batch, prices)
    orders = list(Order.objects.filter(batch=payment.batch).order_by("row_index"))

    # when: staff refund every order, one at a time (with a pause now and then: several windows)
    staff_refunds(payment, orders, pause_every=20)
    wait_until(lambda: all_acknowledged(payment), timeout=60, what="every refund to reach WeChat Pay")

    asked = wechat.refund_requests
    numbers = {body["out_refund_no"] for body in asked}
    assert 3 <= len(numbers) <= 50  # grouped: one request per window that had refunds
    assert len(asked) == len(numbers)  # each asked once: a payment's requests were a window apart
    assert numbers == set(RefundRequest.objects.filter(payment=payment).values_list("reference", flat=True))
    assert sum(body["amount"]["refund"] for body in asked) == int(payment.amount * 100)  # fen

    # then: WeChat Pay completes each request and notifies our webhook
    for number in numbers:
        assert wechat.complete_refund(number).post().status_code == 204
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_amount) == (Payment.Status.REFUNDED, payment.amount)
    assert set(Order.objects.filter(batch=payment.batch).values_list("status", flat=True)) == {"refunded"}
    # each order shows its own refund, of its own amount, and the payment's refunded amount is their sum
    refunds = {refund.order_id: refund for refund in Refund.objects.filter(payment=payment)}
    assert {order.pk: (refunds[order.pk].amount, refunds[order.pk].status) for order in orders} == {
        order.pk: (order.amount, "succeeded") for order in orders
    }
    assert sum(refund.amount for refund in refunds.values()) == payment.refunded_amount
    api_client.force_authenticate(payment.owner)
    listed = api_client.get(f"/api/v1/payments/{payment.pk}/").json()["refunds"]
    assert sorted((refund["order"], refund["amount"]) for refund in listed) == sorted(
        (order.pk, str(order.amount)) for order in orders
    )
    assert {refund["refund_number"] for refund in listed} == numbers
    assert_invariants_hold()


def test_a_refund_request_wechat_pay_could_not_take_is_retried_with_the_same_number_and_refunds_once(
    wechat, placed_batch, wait_until
):
    payment = paid_on_wechat(wechat, placed_batch, ["12.30", "4.50"])
    order = Order.objects.filter(batch=payment.batch).order_by("row_index").first()
    wechat.fail_next_refunds(1, code="SYSTEM_ERROR", status=500)

    staff_refunds(payment, [order])
    wait_until(lambda: all_acknowledged(payment), timeout=60, what="the refund to be asked for again and taken")

    asked = [body["out_refund_no"] for body in wechat.refund_requests]
    request = RefundRequest.objects.get(payment=payment)
    assert asked == [request.reference, request.reference]  # the same number, never a new one
    assert list(wechat.refunds) == [request.reference]  # refunded once
    assert wechat.complete_refund(request.reference).post().status_code == 204
    assert Order.objects.get(pk=order.pk).status == Order.Status.REFUNDED
    assert Payment.objects.get(pk=payment.pk).refunded_amount == Decimal("12.30")
    assert_invariants_hold()


# --- The budget: the last requests a rail allows carry everything still to come ------------------------------


def test_the_delay_grows_as_the_rails_requests_run_out_and_the_last_waits_for_everything_to_come():
    minute = timedelta(minutes=1)
    last_wait = timedelta(hours=settings.PAYMENT_REFUND_LAST_REQUEST_WAIT_HOURS)

    def delay(sent, limit=50, more_to_come=True):
        return services.grouping_delay(sent=sent, limit=limit, window=minute, more_to_come=more_to_come)

    assert [delay(sent) for sent in (0, 20, 39)] == [minute] * 3
    assert [delay(sent) for sent in (40, 41, 47, 48)] == [2 * minute, 4 * minute, 256 * minute, 512 * minute]
    assert delay(49) == last_wait  # the last request waits for what is still to come...
    assert delay(49, more_to_come=False) == minute  # ...unless nothing is
    assert delay(50) is None and delay(50, more_to_come=False) is None
    assert delay(500, limit=None) == minute  # a rail without a limit groups within one window all the same


def test_the_last_request_a_rail_allows_carries_every_refund_still_to_come(placed_batch, client, test_rail):
    test_rail.max_refunds_per_payment = 3
    batch = placed_batch(prices=("1.00", "2.00", "3.00", "4.00", "5.00", "6.00"))
    attempt = paid(client, batch.payment)
    orders = list(batch.orders.order_by("row_index"))
    window = timedelta(seconds=settings.PAYMENT_REFUND_GROUPING_SECONDS)

    def refund_and_group(order, after):
        services.payment_refund_order(order=order, reason="customer asked")
        return services.refunds_group(attempt_id=attempt.pk, now=timezone.now() + after, requeue=False)

    # two requests go a window after their refund...
    first = refund_and_group(orders[0], window)
    second = refund_and_group(orders[1], window * 3)
    assert first is not None and second is not None
    # ...the last one left waits, for days if need be, while orders may still be refunded
    assert refund_and_group(orders[2], window * 3) is None
    assert refund_and_group(orders[3], timedelta(hours=1)) is None
    assert refund_and_group(orders[4], timedelta(days=1)) is None
    # the last order refunded: nothing more can come, and the last request carries all four
    last = refund_and_group(orders[5], window * 3)

    assert last is not None and last.amount == Decimal("18.00")
    assert sorted(last.refunds.values_list("order__row_index", flat=True)) == [2, 3, 4, 5]
    assert RefundRequest.objects.filter(attempt=attempt).count() == 3
    for request in (first, second, last):
        services.refund_request_send(request_id=request.pk)
    assert test_rail.refund_requests == [first.reference, second.reference, last.reference]
    assert_invariants_hold()


def test_past_the_long_wait_the_last_request_goes_and_a_later_refund_is_refused_plainly(
    placed_batch, client, test_rail
):
    test_rail.max_refunds_per_payment = 1
    batch = placed_batch(prices=("1.00", "2.00", "3.00"))
    attempt = paid(client, batch.payment)
    first, second, third = batch.orders.order_by("row_index")
    services.payment_refund_order(order=first)
    services.payment_refund_order(order=second)
    wait = timedelta(hours=settings.PAYMENT_REFUND_LAST_REQUEST_WAIT_HOURS)
    assert services.refunds_group(attempt_id=attempt.pk, now=timezone.now() + wait / 2, requeue=False) is None

    last = services.refunds_group(attempt_id=attempt.pk, now=timezone.now() + wait, requeue=False)

    assert last is not None and last.amount == Decimal("3.00")
    with pytest.raises(services.PaymentError) as refused:
        services.payment_refund_order(order=third)
    assert str(refused.value) == str(messages.REFUND_REQUESTS_USED_UP).format(rail=test_rail.label, limit=1)
    assert not Refund.objects.filter(order=third).exists()
    assert_invariants_hold()


# --- The checker -----------------------------------------------------------------------------------------------


def test_a_request_whose_amount_is_not_its_refunds_sum_and_one_over_the_limit_are_reported(
    placed_batch, client, test_rail
):
    batch = placed_batch()
    attempt = paid(client, batch.payment)
    refund = services.payment_refund_order(order=batch.orders.first())
    request = services.refunds_group(attempt_id=attempt.pk, now=timezone.now() + timedelta(hours=1), requeue=False)
    assert request is not None and found() == {}

    RefundRequest.objects.filter(pk=request.pk).update(amount=refund.amount + 1)
    test_rail.max_refunds_per_payment = 0

    assert found() == {
        "refund_request_disagrees_with_refunds": [str(request.pk)],
        "refund_requests_over_the_rails_limit": [str(attempt.pk)],
    }


# --- Staff's view ----------------------------------------------------------------------------------------------


def test_the_admin_shows_each_request_with_the_refunds_it_carries_read_only(placed_batch, client, test_rail):
    batch = placed_batch()
    attempt = paid(client, batch.payment)
    first, second, _ = batch.orders.order_by("row_index")
    refunds = [services.payment_refund_order(order=order) for order in (first, second)]
    request = services.refunds_group(attempt_id=attempt.pk, now=timezone.now() + timedelta(hours=1), requeue=False)
    assert request is not None
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    listing = client.get("/admin/payments/refundrequest/").content.decode()
    page = client.get(f"/admin/payments/refundrequest/{request.pk}/change/").content.decode()
    payment_page = client.get(f"/admin/payments/payment/{batch.payment.pk}/change/").content.decode()

    assert request.reference in listing and "30.00" in listing
    assert all(refund.reference in page for refund in refunds) and first.number in page
    assert 'name="reference"' not in page  # read-only: no form fields
    assert "1 request to the rail" in payment_page
    assert client.get("/admin/payments/refundrequest/add/").status_code == 403


def test_a_share_not_yet_due_is_looked_at_again_within_ten_minutes_not_days_later(placed_batch, client, test_rail):
    test_rail.max_refunds_per_payment = 1  # the last request: it waits days for the other orders
    batch = placed_batch()
    attempt = paid(client, batch.payment)
    OutboxMessage.objects.all().delete()

    services.payment_refund_order(order=batch.orders.first())
    services.payment_refund_order(order=batch.orders.last())  # joins the first: no second task

    queued = OutboxMessage.objects.get(task=services.GROUP_TASK)
    assert queued.args == [attempt.pk]
    assert queued.due_at <= timezone.now() + timedelta(minutes=10)
    assert services.refunds_group(attempt_id=attempt.pk) is None  # not due: looked at again later
    assert OutboxMessage.objects.filter(task=services.GROUP_TASK).count() == 2
