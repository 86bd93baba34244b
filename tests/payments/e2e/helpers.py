"""What the end-to-end tests of every rail share: placing a batch through the worker, the payment page as the
shopper's browser sees it, and a look at everything a notification may change."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django.test import Client
from django.urls import reverse

from orders.models import Batch, Order, OrderStatusChange
from payments.models import GatewayEvent, Payment, PaymentAttempt, Refund
from tests.orders.factories import ProductFactory
from tests.support.waiting import wait_until

METHOD_BUTTON = re.compile(r'<button [^>]*name="method" value="([^"]+)"')


def place_goods_batch(api_client: Any, wait_for_batch: Any, *, orders: int, unit_price: str = "4.35") -> Batch:
    """A batch of `orders` goods orders, submitted through the API and placed by the worker; its payment pending."""
    ProductFactory(sku="CARD", unit_price=Decimal(unit_price))
    rows = [{"kind": "goods", "sku": "CARD", "quantity": index % 3 + 1} for index in range(orders)]
    response = api_client.post("/api/v1/batches/", {"rows": rows}, format="json")
    assert response.status_code == 202, response.json()
    batch: Batch = wait_for_batch(response.json()["id"])
    assert batch.status == Batch.Status.AWAITING_PAYMENT, batch.status
    return batch


def pay_page_methods(client: Client, payment: Payment) -> list[str]:
    """The methods the payment page offers, as "provider:method" keys, in the page's order."""
    page = client.get(reverse("payments:pay", args=[payment.reference]))
    assert page.status_code == 200
    return METHOD_BUTTON.findall(page.content.decode())


def choose_method(client: Client, payment: Payment, key: str) -> tuple[PaymentAttempt, str]:
    """Choose a method on the payment page: the attempt it started and where the browser is sent next."""
    response = client.post(reverse("payments:pay", args=[payment.reference]), {"method": key})
    assert response.status_code == 302, response.content.decode()[:500]
    attempt = PaymentAttempt.objects.filter(payment=payment).latest("created_at", "pk")
    assert f"{attempt.provider}:{attempt.method}" == key
    return attempt, response["Location"]


def wait_for_payment(payment: Payment, status: str, *, timeout: float = 30) -> Payment:
    def reached() -> Payment | None:
        return Payment.objects.filter(pk=payment.pk, status=status).first()

    found = wait_until(reached, timeout=timeout, what=f"payment {payment.reference} to become {status}")
    assert found is not None
    return found


def payment_state(payment: Payment) -> dict[str, Any]:
    """Everything a notification about this payment could change, to compare before and after one."""
    fresh = Payment.objects.get(pk=payment.pk)
    return {
        "payment": (fresh.status, fresh.refunded_amount, fresh.needs_attention),
        "batch": Batch.objects.get(pk=fresh.batch_id).status,
        "attempts": sorted(PaymentAttempt.objects.filter(payment=fresh).values_list("reference", "status")),
        "orders": sorted(Order.objects.filter(batch_id=fresh.batch_id).values_list("pk", "status")),
        "order changes": OrderStatusChange.objects.filter(order__batch_id=fresh.batch_id).count(),
        "refunds": sorted(Refund.objects.filter(payment=fresh).values_list("reference", "status")),
        "events": GatewayEvent.objects.filter(payment=fresh).count(),
    }
