"""Periodic payment jobs (Celery beat): reconcile pending payments with the gateway, expire unpaid ones."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from payments import services
from payments.models import Payment


@shared_task
def reconcile_pending_payments() -> dict[str, str]:
    """Notifications can be lost: ask the gateway about payments pending for a while."""
    cutoff = timezone.now() - timedelta(minutes=settings.PAYMENT_RECONCILE_AFTER_MINUTES)
    pending = Payment.objects.filter(status=Payment.Status.PENDING, created_at__lte=cutoff).values_list("pk", flat=True)
    return {str(payment_id): services.payment_reconcile(payment_id=payment_id) for payment_id in pending[:500]}


@shared_task
def request_unanswered_refunds() -> int:
    """A refund is recorded before the gateway is asked; if the asking process died, ask again."""
    return services.refunds_request_unanswered()


@shared_task
def expire_unpaid_payments() -> dict[str, str]:
    now = timezone.now()
    due = Payment.objects.filter(status=Payment.Status.PENDING, expires_at__lte=now).values_list("pk", flat=True)
    return {str(payment_id): services.payment_expire(payment_id=payment_id, now=now) for payment_id in due[:500]}
