"""The text of the receipts (orders/services/receipts.py decides when they are due and sends them).

A receipt is written in the language the shopper submitted the batch in, describes each order as its type
describes it, and takes the money facts (what was paid, what came back and why) from the billing side.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from orders import billing, registry
from orders.billing import OrderRefund
from orders.models import Batch, Order, Receipt


@dataclass(frozen=True)
class ReceiptLine:
    number: str
    text: str  # "Mobile top-up: 13800138000 · ¥50 (China Mobile · Beijing)"
    amount: Decimal
    refund: OrderRefund | None


def receipt_message(receipt: Receipt) -> EmailMessage:
    batch = Batch.objects.select_related("owner").get(pk=receipt.batch_id)
    with translation.override(batch.language):
        context = receipt_context(batch)
        subject = _subject(receipt.kind, len(context["lines"]))
        body = render_to_string(f"orders/email/receipt_{receipt.kind}.txt", context)
    return EmailMessage(subject=subject, body=body, to=[receipt.recipient])


def receipt_context(batch: Batch) -> dict:
    """What both receipts say, in the active language."""
    orders = list(Order.objects.filter(batch=batch).order_by("row_index"))
    refunds = billing.billing().refunds(batch=batch)
    lines = []
    for order in orders:
        description = registry.describe(order)
        values = {"kind": registry.label(order.kind), "title": description.title, "detail": description.detail}
        text = (_("%(kind)s: %(title)s (%(detail)s)") if description.detail else _("%(kind)s: %(title)s")) % values
        lines.append(ReceiptLine(number=order.number, text=text, amount=order.amount, refund=refunds.get(order.pk)))
    bill = billing.billing().bill_of(batch)
    refunded = bill.refunded_amount if bill is not None else Decimal("0.00")
    paid = bill.amount if bill is not None else Decimal("0.00")
    return {
        "name": batch.owner.get_full_name() or batch.owner.get_username(),
        "batch": batch,
        "bill": bill,
        "lines": lines,
        "delivered": [line for i, line in enumerate(lines) if orders[i].status == Order.Status.FULFILLED],
        "paid_only": [line for i, line in enumerate(lines) if orders[i].status == Order.Status.PAID],
        "refunded": [line for i, line in enumerate(lines) if orders[i].status == Order.Status.REFUNDED],
        "paid": paid,
        "refunded_amount": refunded,
        "net": paid - refunded,
        "url": settings.SITE_URL + reverse("web:batch-detail", args=[batch.pk]),
    }


def _subject(kind: str, count: int) -> str:
    if kind == Receipt.Kind.PAID:
        text = ngettext("Payment received for %(count)d order", "Payment received for %(count)d orders", count) % {
            "count": count
        }
    else:
        text = ngettext("Your order is complete", "Your %(count)d orders are complete", count) % {"count": count}
    return _("Batchpay: %(subject)s") % {"subject": text}
