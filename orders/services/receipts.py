"""Receipts: the e-mails a shopper is owed about a batch, one when its payment succeeds and one when every order
that still had work to do after payment (its type moved it on to `fulfilling`) has reached its end: fulfilled or
refunded.

A receipt is recorded in the transaction that makes it due, with its sending queued in the outbox: it is
never lost with a crash and never sent for a change that rolled back. The unique (batch, kind) makes each
receipt due once, whatever finds it due; `claimed_at` and `sent_at` make the sending task safe to run twice.
A batch whose orders all end with the payment (goods, or a type that delivers at once) gets the payment receipt
only.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from uuid import UUID

from django.utils import timezone

from orders import locking
from orders.models import Batch, Order, Receipt
from orders.outbox import queue_task
from orders.receipts import receipt_message

logger = logging.getLogger(__name__)

# Named, not imported: tasks import services, never the reverse.
SEND_TASK = "orders.tasks.send_receipt"
# A receipt claimed this long ago and still not sent lost its worker: another delivery of the task sends it.
CLAIM_TIMEOUT = timedelta(minutes=2)
# The completion receipt waits this long at a time for the payment receipt to go out first.
WAIT_FOR_PAYMENT_RECEIPT_SECONDS = 5


class ReceiptNotReady(Exception):
    """Not to be sent now: the task tries again after `retry_in` seconds."""

    def __init__(self, reason: str, retry_in: float):
        super().__init__(reason)
        self.retry_in = retry_in


def receipt_due(*, batch: Batch, kind: str) -> bool:
    """Record that a receipt is owed and queue its sending, in the caller's transaction (the batch locked).

    Once per batch and kind; nothing for a shopper without an e-mail address. Returns whether it was recorded.
    """
    recipient = batch.owner.email
    if not recipient or Receipt.objects.filter(batch=batch, kind=kind).exists():
        return False
    # ignore_conflicts: should another transaction have recorded it after all, this one must not fail.
    Receipt.objects.bulk_create([Receipt(batch=batch, kind=kind, recipient=recipient)], ignore_conflicts=True)
    queue_task(SEND_TASK, str(batch.pk), kind)
    return True


def batch_settle_check(*, batch_id: UUID) -> bool:
    """An order of a paid batch has just left `fulfilling`: if it was the last one, the completion receipt is due.

    The caller holds the batch lock, so two orders settling at once cannot both see the other still open.
    """
    batch = Batch.objects.select_related("owner").get(pk=batch_id)
    if batch.status != Batch.Status.PAID or batch.orders.filter(status=Order.Status.FULFILLING).exists():
        return False
    return receipt_due(batch=batch, kind=Receipt.Kind.SETTLED)


def receipt_send(*, batch_id: UUID | str, kind: str, in_order: bool = True) -> str:
    """Send one receipt, unless it was sent already. Raises ReceiptNotReady when it should be tried later.

    `in_order`: the completion receipt waits for the payment receipt (not where tasks run eagerly, in the web
    process without a broker, where waiting means never).

    The mail server is called outside any lock, between claiming the receipt and marking it sent; a worker that
    dies in between leaves a claim that expires after CLAIM_TIMEOUT, and the receipt is then sent again (at
    least once; twice only if the death came after the server took it and before it was marked).
    """
    now = timezone.now()
    with locking.transaction():
        receipt = locking.lock_first(Receipt.objects.filter(batch_id=batch_id, kind=kind))
        if receipt is None:
            return "no such receipt"
        if receipt.sent_at is not None:
            return "already sent"
        if receipt.claimed_at is not None and now - receipt.claimed_at < CLAIM_TIMEOUT:
            raise ReceiptNotReady("being sent by another worker", CLAIM_TIMEOUT.total_seconds())
        if (
            in_order
            and kind == Receipt.Kind.SETTLED
            and Receipt.objects.filter(batch_id=batch_id, kind=Receipt.Kind.PAID, sent_at__isnull=True).exists()
        ):
            raise ReceiptNotReady("the payment receipt goes first", WAIT_FOR_PAYMENT_RECEIPT_SECONDS)
        receipt.claimed_at, receipt.attempts = now, receipt.attempts + 1
        receipt.save(update_fields=["claimed_at", "attempts"])
    try:
        receipt_message(receipt).send()
    except Exception as error:  # the mail server refused or could not be reached: release the claim, try later
        Receipt.objects.filter(pk=receipt.pk).update(claimed_at=None, last_error=str(error)[:255])
        logger.warning("receipt %s of batch %s not sent: %s", kind, batch_id, error)
        raise
    Receipt.objects.filter(pk=receipt.pk).update(sent_at=timezone.now(), claimed_at=None, last_error="")
    return "sent"
