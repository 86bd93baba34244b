"""Payment jobs: reconcile open attempts with their rails, expire unpaid payments (Celery beat), ask for
refunds again; close attempts at their rails, group refunds into requests and send them (queued through the
outbox)."""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone

from config.celery import DatabaseRetryingTask
from payments import services
from payments.models import Payment, PaymentAttempt
from payments.providers import ProviderUnavailable

logger = logging.getLogger(__name__)


@shared_task
def reconcile_pending_payments() -> dict[str, str]:
    """Notifications can be lost: ask the rails about attempts of pending payments that are open for a while."""
    cutoff = timezone.now() - timedelta(minutes=settings.PAYMENT_RECONCILE_AFTER_MINUTES)
    open_attempt = PaymentAttempt.objects.filter(
        payment=OuterRef("pk"), status=PaymentAttempt.Status.OPEN, created_at__lte=cutoff
    )
    pending = (
        Payment.objects.filter(status=Payment.Status.PENDING)
        .filter(Exists(open_attempt))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return {str(payment_id): services.payment_reconcile(payment_id=payment_id) for payment_id in pending[:500]}


@shared_task
def request_unanswered_refunds() -> int:
    """A refund is recorded before the rail is asked; if the asking failed or died, ask again."""
    return services.refunds_request_unanswered()


@shared_task
def expire_unpaid_payments() -> dict[str, str]:
    now = timezone.now()
    due = Payment.objects.filter(status=Payment.Status.PENDING, expires_at__lte=now).values_list("pk", flat=True)
    return {str(payment_id): services.payment_expire(payment_id=payment_id, now=now) for payment_id in due[:500]}


@shared_task(
    autoretry_for=(ProviderUnavailable, *DatabaseRetryingTask.autoretry_for),
    retry_backoff=5,
    retry_backoff_max=600,
    max_retries=10,
)
def close_attempt(attempt_id: int) -> str:
    """An attempt closed here (its payment expired or was cancelled) is closed at its rail too."""
    return services.attempt_close_at_rail(attempt_id=attempt_id)


@shared_task
def group_refunds(attempt_id: int) -> str:
    """The order refunds of an attempt that fell due together become one refund request (or wait longer)."""
    request = services.refunds_group(attempt_id=attempt_id)
    return f"request {request.reference} of {request.amount}" if request is not None else "nothing due"


@shared_task(
    autoretry_for=(ProviderUnavailable, *DatabaseRetryingTask.autoretry_for),
    retry_backoff=2,
    retry_backoff_max=300,
    max_retries=8,
)
def send_refund_request(request_id: int) -> str:
    """Ask the rail for a refund request, with the same refund number on every retry; after the retries, the
    sweeper (`request_unanswered_refunds`) goes on asking."""
    try:
        request = services.refund_request_send(request_id=request_id)
    except services.PaymentError as refused:
        logger.error("refund request %s refused by the rail: %s", request_id, refused)
        return f"refused: {refused}"
    return str(request.status)
