"""Payment jobs: reconcile open attempts with their rails, expire unpaid payments (Celery beat), ask for
refunds again; close attempts at their rails, group refunds into requests and send them (queued through the
outbox); compare each rail's daily bill with our records."""

import logging
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from functools import partial

from celery import shared_task
from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone

from config.celery import DatabaseRetryingTask
from payments import services
from payments.models import Payment, PaymentAttempt
from payments.providers import RAIL_TIME_ZONE, ProviderError, ProviderUnavailable, configured_providers

logger = logging.getLogger(__name__)


def _each_payment(payment_ids: Iterable[int], job: Callable[..., str]) -> dict[str, str]:
    """Run a sweep's job on each payment; one that fails is logged and the sweep goes on, so that a payment the
    job cannot handle (a rail no longer registered, a bug) does not keep every later one waiting forever."""
    outcomes = {}
    for payment_id in payment_ids:
        try:
            outcomes[str(payment_id)] = job(payment_id=payment_id)
        except Exception as error:
            logger.exception("payment %s: %s failed; the sweep goes on", payment_id, getattr(job, "__name__", "job"))
            outcomes[str(payment_id)] = f"failed: {type(error).__name__}"
    return outcomes


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
    return _each_payment(pending[:500], services.payment_reconcile)


@shared_task
def request_unanswered_refunds() -> int:
    """A refund is recorded before the rail is asked; if the asking failed or died, ask again."""
    return services.refunds_request_unanswered()


@shared_task
def expire_unpaid_payments() -> dict[str, str]:
    now = timezone.now()
    due = Payment.objects.filter(status=Payment.Status.PENDING, expires_at__lte=now).values_list("pk", flat=True)
    return _each_payment(due[:500], partial(services.payment_expire, now=now))


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
def reconcile_statements(day: str | None = None) -> dict[str, str]:
    """Compare every configured rail's daily bill with our records (Celery beat, hourly through China's day).

    Without `day`: each day of the last PAYMENT_STATEMENT_LOOKBACK_DAYS not reconciled yet, so that a bill the
    rail had not made yet, or a rail that could not be reached, is tried again on the next run. With `day`
    (YYYY-MM-DD): that day, again, for every rail. Each rail and day is a task of its own.
    """
    today = timezone.localdate(timezone=RAIL_TIME_ZONE)
    queued = {}
    for provider in configured_providers():
        if day is not None:
            days = [date.fromisoformat(day)]
        else:
            days = services.statement_days_due(
                provider_name=provider.name, today=today, lookback_days=settings.PAYMENT_STATEMENT_LOOKBACK_DAYS
            )
        for due in days:
            reconcile_statement.delay(provider.name, due.isoformat())
        queued[provider.name] = ", ".join(due.isoformat() for due in days) or "nothing due"
    return queued


@shared_task
def reconcile_statement(provider_name: str, day: str) -> str:
    """One rail's bill of one day. A bill not made yet, or a rail out of reach, records nothing: the next
    run of `reconcile_statements` asks again (a long countdown would outlast the broker's visibility timeout)."""
    try:
        return str(services.statement_reconcile(provider_name=provider_name, day=date.fromisoformat(day)))
    except ProviderUnavailable as unavailable:
        logger.info("%s bill of %s not available yet: %s", provider_name, day, unavailable)
        return f"not available yet: {unavailable}"
    except ProviderError as refused:
        logger.error("%s bill of %s could not be reconciled: %s", provider_name, day, refused)
        return f"refused: {refused}"
    except NotImplementedError:
        return "this rail has no daily bill"


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
