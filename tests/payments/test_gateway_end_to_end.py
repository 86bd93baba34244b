"""The sandbox gateway behaving like an external one: the customer pays on its hosted page, the gateway's
notification travels through the real worker to the site's webhook (served by a live server), and only
then does money move. Real worker, Redis, PostgreSQL and HTTP throughout."""

from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from orders.models import Batch, Order, OrderStatusChange
from payments.models import GatewayEvent, Payment, PaymentAttempt, Refund
from payments.sandbox.models import SandboxCharge, SandboxNotification
from tests.factories import UserFactory
from tests.orders.factories import ProductFactory
from tests.payments.sandbox import gateway_path, open_attempt


@pytest.fixture
def site(live_server, worker):
    return live_server


def place_via_api(api_client, wait_for_batch, rows):
    response = api_client.post("/api/v1/batches/", {"rows": rows}, format="json")
    assert response.status_code == 202, response.json()
    return wait_for_batch(response.json()["id"])


def pay_on_gateway_page(client, payment, decision="pay"):
    path = gateway_path(payment)
    page = client.get(path)
    assert page.status_code == 200
    return client.post(path, {"decision": decision})


def wait_for_payment(wait_until, payment, status):
    return wait_until(
        lambda: Payment.objects.filter(pk=payment.pk, status=status).first(),
        timeout=30,
        what=f"payment {payment.reference} to become {status}",
    )


def test_a_20_order_batch_is_one_payment_paid_through_the_gateway_page(
    site, api_client, client, post_webhook, wait_for_batch, wait_until
):
    ProductFactory(sku="CARD", unit_price=Decimal("4.35"))
    rows = [{"kind": "goods", "sku": "CARD", "quantity": q % 4 + 1} for q in range(20)]
    batch = place_via_api(api_client, wait_for_batch, rows)
    payment = Payment.objects.get(batch=batch)
    orders = Order.objects.filter(batch=batch)
    assert orders.count() == 20
    assert (
        payment.amount == sum(order.amount for order in orders) == Decimal("4.35") * sum(q % 4 + 1 for q in range(20))
    )

    page = client.get(gateway_path(payment))
    assert f"{payment.amount} CNY".encode() in page.content
    # every order is listed on the gateway's page, described by its type
    assert page.content.count(b"Product CARD \xc3\x97 ") == 20
    response = pay_on_gateway_page(client, payment)
    assert response.status_code == 302  # back to the shop

    wait_for_payment(wait_until, payment, Payment.Status.SUCCEEDED)
    batch.refresh_from_db()
    assert batch.status == Batch.Status.PAID
    assert set(orders.values_list("status", flat=True)) == {Order.Status.PAID}
    # the worker records the delivery once the webhook's 200 is back, a moment after the payment is applied
    notification = wait_until(
        lambda: SandboxNotification.objects.filter(delivered_at__isnull=False).first(),
        timeout=10,
        what="the notification's delivery to be recorded",
    )
    assert SandboxNotification.objects.count() == 1

    # the gateway delivers the same event again: answered 200, nothing changes
    audit_rows = OrderStatusChange.objects.filter(order__batch=batch).count()
    again = post_webhook(notification.body.encode())
    assert again.status_code == 200 and again.json()["detail"].startswith("duplicate")
    assert OrderStatusChange.objects.filter(order__batch=batch).count() == audit_rows
    assert GatewayEvent.objects.filter(payment=payment).count() == 1


def test_a_notification_the_site_could_not_take_is_delivered_by_a_retry(
    site, api_client, client, wait_for_batch, wait_until
):
    ProductFactory(sku="CARD", unit_price=Decimal("4.35"))
    batch = place_via_api(api_client, wait_for_batch, [{"kind": "goods", "sku": "CARD"}])
    payment = Payment.objects.get(batch=batch)
    attempt = open_attempt(payment)  # the customer chose the sandbox: the gateway knows the attempt
    charge = SandboxCharge.objects.get(merchant_reference=attempt.reference)
    real_notify_url = charge.notify_url
    # the site's webhook is unreachable for the first delivery
    SandboxCharge.objects.filter(pk=charge.pk).update(notify_url="http://127.0.0.1:1/payments/webhooks/sandbox/")

    pay_on_gateway_page(client, payment)
    wait_until(
        lambda: SandboxNotification.objects.filter(charge=charge, attempts__gte=1).exclude(last_error="").exists(),
        timeout=30,
        what="the first delivery to fail",
    )
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.PENDING
    SandboxCharge.objects.filter(pk=charge.pk).update(notify_url=real_notify_url)

    wait_for_payment(wait_until, payment, Payment.Status.SUCCEEDED)
    assert SandboxNotification.objects.get(charge=charge).attempts >= 2


def test_refunding_orders_of_a_paid_payment_one_by_one(site, api_client, client, wait_for_batch, wait_until):
    staff = UserFactory(is_staff=True)
    ProductFactory(sku="A", unit_price=Decimal("10.00"))
    ProductFactory(sku="B", unit_price=Decimal("25.50"))
    rows = [{"kind": "goods", "sku": "A"}, {"kind": "goods", "sku": "B"}, {"kind": "goods", "sku": "A", "quantity": 3}]
    batch = place_via_api(api_client, wait_for_batch, rows)
    payment = Payment.objects.get(batch=batch)
    pay_on_gateway_page(client, payment)
    wait_for_payment(wait_until, payment, Payment.Status.SUCCEEDED)
    first, second, third = Order.objects.filter(batch=batch).order_by("row_index")
    from rest_framework.test import APIClient

    staff_api = APIClient()
    staff_api.force_authenticate(staff)
    refunds_url = f"/api/v1/payments/{payment.pk}/refunds/"

    # when: one order is refunded
    response = staff_api.post(refunds_url, {"order": second.pk, "reason": "customer asked"}, format="json")

    assert response.status_code == 201
    assert response.json()["status"] == "pending"  # money moves on the gateway's word, not before
    payment = wait_for_payment(wait_until, payment, Payment.Status.PARTIALLY_REFUNDED)
    assert payment.refunded_amount == second.amount == Decimal("25.50")
    second.refresh_from_db()
    assert second.status == Order.Status.REFUNDED

    # a second refund of the same order is refused
    again = staff_api.post(refunds_url, {"order": second.pk}, format="json")
    assert again.status_code == 409
    assert again.json()["detail"] == f"Order {second.number} has already been refunded."

    # refunding the rest makes the payment refunded
    for order in (first, third):
        assert staff_api.post(refunds_url, {"order": order.pk}, format="json").status_code == 201
    payment = wait_for_payment(wait_until, payment, Payment.Status.REFUNDED)
    assert payment.refunded_amount == payment.amount == Decimal("65.50")
    assert Refund.objects.filter(payment=payment, status="succeeded").count() == 3
    detail = api_client.get(f"/api/v1/payments/{payment.pk}/").json()
    assert (detail["status"], detail["refunded_amount"]) == ("refunded", "65.50")


def test_declined_on_the_gateway_page_then_paid_on_a_second_attempt(
    site, api_client, client, wait_for_batch, wait_until
):
    from orders.models import Product

    ProductFactory(sku="CARD", unit_price=Decimal("4.35"), stock=3)
    batch = place_via_api(api_client, wait_for_batch, [{"kind": "goods", "sku": "CARD"}])
    payment = Payment.objects.get(batch=batch)
    client.force_login(batch.owner)
    pay_url = f"/payments/pay/{payment.reference}/"

    # the shopper chooses the sandbox on the payment page and declines on the gateway's page
    first = urlsplit(client.post(pay_url, {"method": "sandbox:page"})["Location"]).path
    assert client.post(first, {"decision": "decline"}).status_code == 302
    declined = wait_until(
        lambda: PaymentAttempt.objects.filter(payment=payment, status=PaymentAttempt.Status.DECLINED).first(),
        timeout=30,
        what="the decline to arrive",
    )

    # the batch still waits for payment, its stock held, and says so
    batch.refresh_from_db()
    assert (batch.status, Payment.objects.get(pk=payment.pk).status) == (Batch.Status.AWAITING_PAYMENT, "pending")
    assert Product.objects.get(sku="CARD").stock == 2
    page = client.get(f"/batches/{batch.pk}/?returned=1").content.decode()
    assert "Payment declined — try again." in page and f'href="{settings.SITE_URL}{pay_url}"' in page
    assert "every 1s" not in page  # nothing to wait for: the shopper's turn

    # they try again, and pay
    second = urlsplit(client.post(pay_url, {"method": "sandbox:page"})["Location"]).path
    assert second != first  # a new attempt, a new charge at the gateway
    client.post(second, {"decision": "pay"})

    wait_for_payment(wait_until, payment, Payment.Status.SUCCEEDED)
    batch.refresh_from_db()
    assert batch.status == Batch.Status.PAID
    assert Payment.objects.filter(batch=batch).count() == 1
    attempts = list(payment.attempts.order_by("created_at").values_list("status", flat=True))
    assert attempts == ["declined", "succeeded"]
    assert declined.reference != payment.attempts.get(status="succeeded").reference
