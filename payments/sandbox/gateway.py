"""The sandbox gateway's "server API": what a merchant can ask of it. A real gateway would answer these
over HTTPS; the sandbox answers in-process but keeps its own records and its own rules."""

from __future__ import annotations

import json
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from orders.outbox import queue_task
from payments.sandbox.models import SandboxCharge, SandboxNotification, SandboxRefund

# Named, not imported: tasks import this module's neighbours, never the reverse.
DELIVERY_TASK = "payments.sandbox.tasks.deliver_notification"


class GatewayRefused(Exception):
    pass


def charge_create(
    *,
    merchant_reference: str,
    amount: Decimal,
    currency: str,
    description: str,
    items: list[dict],
    notify_url: str,
    return_url: str = "",
) -> SandboxCharge:
    charge, _ = SandboxCharge.objects.get_or_create(
        merchant_reference=merchant_reference,
        defaults={
            "amount": amount,
            "currency": currency,
            "description": description[:255],
            "items": items,
            "notify_url": notify_url,
            "return_url": return_url,
        },
    )
    return charge


def charge_decide(*, charge_reference: str, pay: bool) -> SandboxCharge:
    """The payer pressed Pay or Decline on the hosted page. Only the first choice counts."""
    with transaction.atomic():
        charge = SandboxCharge.objects.select_for_update().get(reference=charge_reference)
        if charge.status != SandboxCharge.Status.OPEN:
            return charge
        charge.status = SandboxCharge.Status.PAID if pay else SandboxCharge.Status.DECLINED
        charge.decided_at = timezone.now()
        charge.save(update_fields=["status", "decided_at"])
        _notify(charge, "payment.succeeded" if pay else "payment.failed", charge.amount)
    return charge


def charge_close(*, merchant_reference: str) -> None:
    """The merchant will not take this charge any more: an open one can no longer be paid. Closing a charge
    the gateway never saw, or one already decided, changes nothing (a paid one stays paid)."""
    SandboxCharge.objects.filter(merchant_reference=merchant_reference, status=SandboxCharge.Status.OPEN).update(
        status=SandboxCharge.Status.CLOSED, decided_at=timezone.now()
    )


def refund_create(*, merchant_reference: str, merchant_refund_reference: str, amount: Decimal) -> SandboxRefund:
    """Refund part of a paid charge. Idempotent per merchant refund reference, as real gateways are.

    The gateway knows only its charge, not what the merchant made of it: a charge paid after the merchant
    cancelled or expired its payment is paid all the same, and refunded like any other.
    """
    with transaction.atomic():
        charge = SandboxCharge.objects.select_for_update().get(merchant_reference=merchant_reference)
        existing = charge.refunds.filter(merchant_reference=merchant_refund_reference).first()
        if existing is not None:
            return existing
        if charge.status != SandboxCharge.Status.PAID:
            raise GatewayRefused("only a paid charge can be refunded")
        refunded = sum((refund.amount for refund in charge.refunds.all()), Decimal("0"))
        if refunded + amount > charge.amount:
            raise GatewayRefused("refunds would exceed the charge")
        refund = SandboxRefund.objects.create(
            charge=charge, amount=amount, merchant_reference=merchant_refund_reference
        )
        # The notification names the refund by the merchant's number, which the merchant recorded
        # before asking: it can never arrive before the merchant knows the refund.
        _notify(charge, "refund.succeeded", amount, refund_reference=merchant_refund_reference)
    return refund


def charge_status(*, merchant_reference: str) -> dict | None:
    charge = SandboxCharge.objects.filter(merchant_reference=merchant_reference).first()
    if charge is None:
        return None
    return {
        "status": charge.status,
        "amount": charge.amount,
        "currency": charge.currency,
        "reference": charge.reference,
    }


def refund_exists(*, merchant_refund_reference: str) -> bool:
    return SandboxRefund.objects.filter(merchant_reference=merchant_refund_reference).exists()


def _notify(charge: SandboxCharge, event_type: str, amount: Decimal, **extra) -> None:
    notification = SandboxNotification(charge=charge, type=event_type)
    data = {
        "reference": charge.merchant_reference,
        "amount": f"{amount:.2f}",
        "currency": charge.currency,
        "transaction_id": charge.reference,
        **extra,
    }
    notification.body = json.dumps({"id": notification.event_id, "type": event_type, "data": data})
    notification.save()
    queue_task(DELIVERY_TASK, notification.pk)
