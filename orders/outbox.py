"""Work that a committed change promises, stored with the change: a transactional outbox.

`queue_task(name, *args)` writes an `OutboxMessage` in the caller's transaction. Once that transaction
commits the message is published at once; if the broker is down, the request that committed goes on
unharmed (a failed publish costs at most the broker's connect timeout, and for a few seconds after one
failure nobody even tries) and `publish_due` — run by beat every few seconds and by every worker when it
starts — publishes what is still waiting as soon as the broker is back. A message may be published more
than once (a crash between publishing and recording it); every task is idempotent.

Tasks are named, not imported: tasks import services, never the reverse. Nobody reads these tasks' results,
so none is subscribed to in the result backend (whose reconnect loop would otherwise hold the request).
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from celery import Task, current_app
from django.db import transaction
from django.utils import timezone

from orders import locking
from orders.models import OutboxMessage

logger = logging.getLogger(__name__)

# After a failed publish, leave publishing to the sweeper for this long instead of trying per request.
BROKER_BACKOFF_SECONDS = 5.0
# The sweeper leaves the newest messages to the publish that follows their own commit.
SWEEP_GRACE = timedelta(seconds=2)

_broker_down_until = 0.0


def queue_task(name: str, *args: Any, delay: float = 0) -> OutboxMessage:
    """Promise a task run (after `delay` seconds): stored now, published once the caller's transaction commits."""
    message = OutboxMessage.objects.create(task=name, args=list(args), due_at=timezone.now() + timedelta(seconds=delay))
    transaction.on_commit(lambda: _publish_soon(message), robust=True)
    return message


def publish_due(*, limit: int = 1000) -> int:
    """Publish waiting messages, oldest first; stops at the first broker failure. Returns how many went out."""
    published = 0
    with locking.transaction():
        cutoff = timezone.now() - SWEEP_GRACE
        waiting = locking.lock_all(
            OutboxMessage.objects.filter(published_at__isnull=True, created_at__lte=cutoff),
            skip_locked=True,
            limit=limit,
        )
        for message in waiting:
            if not _publish(message):
                break
            published += 1
    return published


def purge_published(*, older_than: timedelta = timedelta(days=7)) -> int:
    """Forget messages the broker took long ago (the table would otherwise only grow)."""
    cutoff = timezone.now() - older_than
    old = OutboxMessage.objects.filter(published_at__lte=cutoff).values_list("pk", flat=True)[:10_000]
    return OutboxMessage.objects.filter(pk__in=list(old)).delete()[0]


def _publish_soon(message: OutboxMessage) -> None:
    if time.monotonic() < _broker_down_until:
        return  # the broker failed moments ago: the sweeper publishes this once it is back
    _publish(message)


def _task(name: str) -> Task[Any, Any]:
    # A web process has imported only the tasks modules something else imported; the worker imports all.
    if name not in current_app.tasks:
        current_app.loader.import_default_modules()
    return current_app.tasks[name]


def _publish(message: OutboxMessage) -> bool:
    global _broker_down_until
    countdown = max(0.0, (message.due_at - timezone.now()).total_seconds())
    try:
        # retry=False: one quick try; the outbox is the retry.
        _task(message.task).apply_async(
            message.args,
            countdown=countdown or None,  # type: ignore[arg-type]  # celery-types says float; None is celery's default
            retry=False,
            ignore_result=True,
        )
    except Exception as error:  # noqa: BLE001 - any broker failure; the message stays waiting
        _broker_down_until = time.monotonic() + BROKER_BACKOFF_SECONDS
        OutboxMessage.objects.filter(pk=message.pk).update(attempts=message.attempts + 1, last_error=str(error)[:255])
        logger.warning("outbox: %s not published yet (%s); the sweeper will retry", message.task, error)
        return False
    OutboxMessage.objects.filter(pk=message.pk, published_at__isnull=True).update(published_at=timezone.now())
    return True
