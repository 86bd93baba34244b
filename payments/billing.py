"""The payments app as the orders app's `Billing` (orders/billing.py): registered in PaymentsConfig.ready()."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.db.models import OuterRef, Subquery

from orders.billing import Bill, Billing, OrderRefund
from payments import services
from payments.models import Payment, PaymentAttempt, Refund

if TYPE_CHECKING:
    from orders.models import Batch, Order


class PaymentsBilling(Billing):
    def bill_batch(self, *, batch: Batch) -> None:
        services.payment_create_for_batch(batch=batch)

    def cancel_bill(self, *, batch: Batch) -> None:
        services.payment_cancel_for_batch(batch=batch)

    def bills(self, batch_ids: Iterable[Any]) -> dict[Any, Bill]:
        latest_attempt = PaymentAttempt.objects.filter(payment=OuterRef("pk")).order_by("-created_at", "-pk")
        payments = Payment.objects.filter(batch_id__in=list(batch_ids)).annotate(
            last_attempt_status=Subquery(latest_attempt.values("status")[:1])
        )
        return {payment.batch_id: _bill(payment) for payment in payments}

    def refund_order(self, *, order: Order, reason: str) -> None:
        services.payment_refund_order(order=order, reason=reason)

    def refunds(self, *, batch: Batch) -> dict[int, OrderRefund]:
        # At most one refund per order is not failed (refund_one_live_per_order).
        live = Refund.objects.filter(payment__batch_id=batch.pk, kind=Refund.Kind.SHARE).exclude(
            status=Refund.Status.FAILED
        )
        return {
            refund["order_id"]: OrderRefund(**refund)
            for refund in live.values("reference", "order_id", "amount", "status", "reason")
        }


def _bill(payment: Payment) -> Bill:
    return Bill(
        id=payment.pk,
        reference=payment.reference,
        status=payment.status,
        amount=payment.amount,
        refunded_amount=payment.refunded_amount,
        currency=payment.currency,
        pay_url=services.payment_pay_url(payment),
        expires_at=payment.expires_at,
        # Read by the batch page: the shopper's last try was declined, and they may try again.
        declined=getattr(payment, "last_attempt_status", None) == PaymentAttempt.Status.DECLINED,
    )
