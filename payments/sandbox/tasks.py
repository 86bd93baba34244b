"""The sandbox gateway calling the merchant back, as an external gateway would: signed, asynchronous,
retried with backoff until the merchant answers 2xx."""

import logging
import urllib.error
import urllib.request

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from config.celery import DatabaseRetryingTask
from payments.sandbox.models import SandboxNotification
from payments.signing import SIGNATURE_HEADER, sign

logger = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    pass


@shared_task(
    autoretry_for=(DeliveryFailed, *DatabaseRetryingTask.autoretry_for),
    retry_backoff=2,
    retry_backoff_max=600,
    retry_jitter=False,
    max_retries=12,
)
def deliver_notification(notification_id: int) -> int:
    notification = SandboxNotification.objects.select_related("charge").get(pk=notification_id)
    if notification.delivered_at is not None:
        return 200
    body = notification.body.encode()
    request = urllib.request.Request(
        notification.charge.notify_url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: sign(settings.SANDBOX_WEBHOOK_SECRET, body)},
    )
    SandboxNotification.objects.filter(pk=notification_id).update(attempts=notification.attempts + 1)
    status: int
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        _record_failure(notification_id, f"unreachable: {error}")
        raise DeliveryFailed(str(error)) from None
    if not 200 <= status < 300:
        _record_failure(notification_id, f"HTTP {status}")
        raise DeliveryFailed(f"HTTP {status}")
    SandboxNotification.objects.filter(pk=notification_id).update(delivered_at=timezone.now(), last_error="")
    return status


def _record_failure(notification_id: int, error: str) -> None:
    logger.warning("sandbox notification %s not delivered: %s", notification_id, error)
    SandboxNotification.objects.filter(pk=notification_id).update(last_error=error[:255])
