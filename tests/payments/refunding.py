"""Refunding an order at once in a test's own process: what the grouping and sending tasks do a window later."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from django.utils import timezone

from orders.models import Order
from payments import services
from payments.models import Refund
from payments.providers import ProviderUnavailable


def group_now(attempt_id: int) -> None:
    """Group the attempt's waiting shares into a request as if their window had passed, and ask the rail for
    it (an unavailable rail leaves it pending, as the task leaves it to its retries)."""
    request = services.refunds_group(attempt_id=attempt_id, now=timezone.now() + timedelta(days=7), requeue=False)
    if request is None:
        return
    with contextlib.suppress(ProviderUnavailable):
        services.refund_request_send(request_id=request.pk)


def refund_order_now(order: Order, reason: str = "customer asked") -> Refund:
    """The staff refund of one order (`payment_refund_order`), its request made and sent at once."""
    refund = services.payment_refund_order(order=order, reason=reason)
    group_now(refund.attempt_id)
    refund.refresh_from_db()
    return refund
