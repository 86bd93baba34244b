"""WeChat Pay end to end: the shop's pages and a real worker against the fake WeChat Pay (tests/payments/fakes),
whose notifications reach the site's webhook over HTTP (the live server, where SITE_URL points). Nothing is
mocked between the shopper's choice, the rail's HTTP API and the state of the batch."""

import re
from decimal import Decimal

import segno
from django.urls import reverse

from orders.models import Batch, Order
from payments.models import GatewayEvent, Payment, PaymentAttempt, Refund
from payments.tasks import expire_unpaid_payments, reconcile_pending_payments
from tests.payments.e2e.helpers import (
    choose_method,
    pay_page_methods,
    payment_state,
    place_goods_batch,
    wait_for_payment,
)
from tests.payments.fakes.wechat import FakeWeChatPay
from tests.support.waiting import wait_until

NATIVE = "wechat:native"
SVG_PATH = re.compile(r'<path [^>]*d="([^"]+)"')


def fen(amount: Decimal) -> int:
    return int(amount * 100)


def requests_to(fake: FakeWeChatPay, method: str, path: str) -> list[dict]:
    return [received.body or {} for received in fake.received if (received.method, received.path) == (method, path)]


def pay_natively(client, fake: FakeWeChatPay, payment: Payment) -> PaymentAttempt:
    """Choose WeChat Pay's QR code on the payment page; the QR page shows the code of the fake's code_url."""
    attempt, location = choose_method(client, payment, NATIVE)
    assert location == reverse("payments:attempt", args=[attempt.reference])
    code_url = fake.orders[attempt.reference].pay_url
    assert code_url.startswith("weixin://wxpay/bizpayurl?pr=")
    page = client.get(location).content.decode()
    svg = re.search(r'<svg [^>]*id="qr-code".*?</svg>', page, re.S)
    assert svg is not None, "no QR code on the page"
    # The code drawn is the one for the fake's code_url (segno draws every dark module into one path).
    drawn = SVG_PATH.search(svg.group(0))
    expected = SVG_PATH.search(segno.make(code_url, error="m").svg_inline(scale=6))
    assert drawn and expected and drawn.group(1) == expected.group(1)
    assert code_url not in page  # drawn here, not left to a third-party image service or the browser
    return attempt


def test_a_20_order_batch_paid_by_wechat_native_is_applied_once(
    rail_site, fake_wechat, api_client, client, wait_for_batch
):
    site = rail_site(**fake_wechat.environment())
    batch = place_goods_batch(api_client, wait_for_batch, orders=20)
    payment = Payment.objects.get(batch=batch)
    assert Order.objects.filter(batch=batch).count() == 20

    assert NATIVE in pay_page_methods(client, payment)
    assert not any(key.startswith("sandbox:") for key in pay_page_methods(client, payment))
    attempt = pay_natively(client, fake_wechat, payment)
    order = fake_wechat.orders[attempt.reference]
    assert order.total == fen(payment.amount)
    assert order.notify_url == site.url + reverse("payments:webhook", args=["wechat"])

    notification = fake_wechat.mark_paid(attempt.reference)
    delivered = notification.post()

    assert (delivered.status_code, delivered.content) == (204, b"")
    payment = wait_for_payment(payment, Payment.Status.SUCCEEDED)
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.PAID
    assert set(Order.objects.filter(batch=batch).values_list("status", flat=True)) == {Order.Status.PAID}
    attempt.refresh_from_db()
    assert attempt.status == PaymentAttempt.Status.SUCCEEDED
    assert attempt.transaction_id == order.transaction_id
    assert PaymentAttempt.objects.filter(payment=payment, status=PaymentAttempt.Status.SUCCEEDED).count() == 1
    assert GatewayEvent.objects.filter(payment=payment, event_id=notification.id).count() == 1

    # WeChat Pay delivers the same notification again: answered as applied, nothing changes.
    before = payment_state(payment)
    again = notification.post()
    assert (again.status_code, again.content) == (204, b"")
    assert payment_state(payment) == before


def test_forged_notifications_are_refused_and_change_nothing(rail_site, fake_wechat, placed_batch, client):
    rail_site(**fake_wechat.environment())
    payment = Payment.objects.get(batch=placed_batch())
    attempt = pay_natively(client, fake_wechat, payment)
    fake_wechat.mark_paid(attempt.reference)
    before = payment_state(payment)

    for forgery in ("bad_signature", "stale_timestamp", "wrong_amount", "wrong_mchid", "wrong_appid"):
        answer = fake_wechat.payment_notification(attempt.reference, forge=forgery).post()

        # WeChat Pay's documented refusal: a 4XX/5XX status with {"code": "FAIL"}; it notifies again later.
        assert answer.status_code == 500, (forgery, answer.status_code)
        assert answer.json()["code"] == "FAIL", forgery
        assert payment_state(payment) == before, forgery
    assert before["payment"][0] == Payment.Status.PENDING
    assert before["events"] == 0

    # The genuine notification of the same payment is taken: the refusals were the forgeries'.
    assert fake_wechat.payment_notification(attempt.reference).post().status_code == 204
    wait_for_payment(payment, Payment.Status.SUCCEEDED)


def test_declined_on_wechat_then_paid_with_alipay(rail_site, fake_wechat, fake_alipay, placed_batch, client):
    # Asking the rails about open attempts at once, not after minutes: WeChat Pay never notifies a failure.
    rail_site(**fake_wechat.environment(), **fake_alipay.environ(), PAYMENT_RECONCILE_AFTER_MINUTES="0")
    batch = placed_batch()
    payment = Payment.objects.get(batch=batch)
    assert pay_page_methods(client, payment) == [NATIVE, "alipay:page"]
    declined = pay_natively(client, fake_wechat, payment)

    fake_wechat.mark_failed(declined.reference)  # PAYERROR
    reconcile_pending_payments.delay()

    wait_until(
        lambda: PaymentAttempt.objects.filter(pk=declined.pk, status=PaymentAttempt.Status.DECLINED).exists(),
        timeout=30,
        what="the worker's query to find the WeChat attempt declined",
    )
    page = client.get(reverse("payments:pay", args=[payment.reference])).content.decode()
    assert 'id="declined"' in page
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.PENDING
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.AWAITING_PAYMENT

    second, pay_url = choose_method(client, payment, "alipay:page")
    status, _cashier = fake_alipay.open(pay_url)
    assert status == 200
    fake_alipay.pay(second.reference, notify=True)

    wait_for_payment(payment, Payment.Status.SUCCEEDED)
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.PAID
    attempts = dict(PaymentAttempt.objects.filter(payment=payment).values_list("reference", "status"))
    assert attempts == {declined.reference: "declined", second.reference: "succeeded"}
    assert GatewayEvent.objects.filter(payment=payment).count() == 1
    assert not Refund.objects.filter(payment=payment).exists()


def test_a_second_wechat_success_is_refunded_through_wechat_and_flagged(rail_site, fake_wechat, placed_batch, client):
    site = rail_site(**fake_wechat.environment())
    payment = Payment.objects.get(batch=placed_batch())
    first = pay_natively(client, fake_wechat, payment)
    second = pay_natively(client, fake_wechat, payment)  # the shopper asked for a new code, then paid both

    assert fake_wechat.mark_paid(first.reference).post().status_code == 204
    # Once paid, the other code is closed at WeChat Pay, by the worker...
    wait_until(
        lambda: requests_to(fake_wechat, "POST", f"/v3/pay/transactions/out-trade-no/{second.reference}/close"),
        timeout=30,
        what="the worker to close the other attempt at WeChat Pay",
    )
    assert fake_wechat.orders[second.reference].trade_state == "CLOSED"
    # ...but the shopper's second payment crossed the close: WeChat Pay took the money and notifies it.
    assert fake_wechat.mark_paid(second.reference).post().status_code == 204

    wait_until(lambda: fake_wechat.refund_requests, timeout=30, what="the refund request of the second capture")
    (request,) = fake_wechat.refund_requests
    refund = Refund.objects.select_related("request").get(attempt=second)
    assert request["out_trade_no"] == second.reference
    assert refund.request is not None and request["out_refund_no"] == refund.request.reference
    assert request["amount"] == {"refund": fen(payment.amount), "total": fen(payment.amount), "currency": "CNY"}
    assert request["notify_url"] == site.url + reverse("payments:webhook", args=["wechat"])
    payment.refresh_from_db()
    second.refresh_from_db()
    assert payment.status == Payment.Status.SUCCEEDED and payment.needs_attention
    assert second.status == PaymentAttempt.Status.UNHONOURED and second.needs_attention
    assert refund.status == Refund.Status.PENDING  # WeChat Pay answered PROCESSING

    assert fake_wechat.complete_refund(refund.request.reference).post().status_code == 204
    refund.refresh_from_db()
    second.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED
    assert second.refunded_amount == payment.amount
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_amount) == (Payment.Status.SUCCEEDED, Decimal("0"))


def test_one_orders_share_is_a_partial_refund_of_the_wechat_payment(
    rail_site, fake_wechat, placed_batch, client, staff_api
):
    rail_site(**fake_wechat.environment())
    batch = placed_batch(prices=("10.00", "25.50", "30.00"))
    payment = Payment.objects.get(batch=batch)
    attempt = pay_natively(client, fake_wechat, payment)
    assert fake_wechat.mark_paid(attempt.reference).post().status_code == 204
    wait_for_payment(payment, Payment.Status.SUCCEEDED)
    order = Order.objects.filter(batch=batch).order_by("row_index")[1]

    response = staff_api.post(f"/api/v1/payments/{payment.pk}/refunds/", {"order": order.pk}, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "pending"
    # The share waits its grouping window, then goes to WeChat Pay as a request of its own.
    wait_until(lambda: fake_wechat.refund_requests, timeout=30, what="the refund request of the share")
    (request,) = fake_wechat.refund_requests
    refund = Refund.objects.select_related("request").get(order=order)
    assert request["out_trade_no"] == attempt.reference
    assert refund.request is not None and request["out_refund_no"] == refund.request.reference
    assert request["amount"] == {"refund": 2550, "total": 6550, "currency": "CNY"}
    order.refresh_from_db()
    assert order.status == Order.Status.PAID  # money moves on WeChat Pay's word

    assert fake_wechat.complete_refund(refund.request.reference).post().status_code == 204
    order.refresh_from_db()
    payment.refresh_from_db()
    assert order.status == Order.Status.REFUNDED
    assert (payment.status, payment.refunded_amount) == (Payment.Status.PARTIALLY_REFUNDED, Decimal("25.50"))
    others = Order.objects.filter(batch=batch).exclude(pk=order.pk).values_list("status", flat=True)
    assert set(others) == {Order.Status.PAID}


def test_expiry_closes_the_wechat_attempt_and_a_later_success_is_refunded(rail_site, fake_wechat, placed_batch, client):
    rail_site(**fake_wechat.environment())
    batch = placed_batch()
    payment = Payment.objects.get(batch=batch)
    attempt = pay_natively(client, fake_wechat, payment)
    Payment.objects.filter(pk=payment.pk).update(expires_at=payment.created_at)  # its time is up

    expire_unpaid_payments.delay()

    wait_until(
        lambda: requests_to(fake_wechat, "POST", f"/v3/pay/transactions/out-trade-no/{attempt.reference}/close"),
        timeout=30,
        what="the worker to close the attempt at WeChat Pay",
    )
    assert fake_wechat.orders[attempt.reference].trade_state == "CLOSED"
    payment.refresh_from_db()
    attempt.refresh_from_db()
    assert (payment.status, attempt.status) == (Payment.Status.EXPIRED, PaymentAttempt.Status.CLOSED)
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.EXPIRED

    # The shopper's payment crossed the close: WeChat Pay took the money and notifies it.
    assert fake_wechat.mark_paid(attempt.reference).post().status_code == 204

    wait_until(lambda: fake_wechat.refund_requests, timeout=30, what="the late capture's refund request")
    (request,) = fake_wechat.refund_requests
    assert request["out_trade_no"] == attempt.reference
    assert request["amount"]["refund"] == fen(payment.amount)
    payment.refresh_from_db()
    attempt.refresh_from_db()
    assert payment.status == Payment.Status.EXPIRED and payment.needs_attention
    assert attempt.status == PaymentAttempt.Status.UNHONOURED
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.EXPIRED
