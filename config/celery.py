"""The Celery application. Its configuration lives in Django settings under the CELERY_ prefix."""

import logging
import os
from typing import Any

from celery import Celery, Task, signals
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

logger = logging.getLogger(__name__)


class DatabaseRetryingTask(Task):
    """Every task retries transient database trouble (a restart, a failover, a dropped connection) with
    backoff; anything else is a bug and fails loudly, and the recovery jobs finish the work later. Tasks are
    idempotent, so running one again after a half-done attempt is safe."""

    autoretry_for = (OperationalError, InterfaceError)
    retry_backoff = True
    retry_backoff_max = 30
    max_retries = 8

    def apply_async(self, args: Any = None, kwargs: Any = None, *rest: Any, **options: Any) -> Any:
        # Every publish passes here: a task queued through the outbox, a retry, a chord's header and callback.
        # A longer countdown than the broker can hold a task for is shortened (settings.TASK_LONGEST_COUNTDOWN_SECONDS:
        # RabbitMQ's consumer_timeout would make the worker exit); every task is safe to run early, since each
        # re-reads what it works on. The project passes `countdown` only, never `eta`.
        countdown = options.get("countdown")
        if countdown is not None and countdown > settings.TASK_LONGEST_COUNTDOWN_SECONDS:
            logger.warning(
                "%s: countdown of %.0f s shortened to %d s (TASK_LONGEST_COUNTDOWN_SECONDS)",
                self.name,
                countdown,
                settings.TASK_LONGEST_COUNTDOWN_SECONDS,
            )
            options["countdown"] = settings.TASK_LONGEST_COUNTDOWN_SECONDS
        return super().apply_async(args, kwargs, *rest, **options)


app = Celery("batchpay", task_cls=DatabaseRetryingTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_ready.connect
def _sweep_when_a_worker_starts(sender, **kwargs):
    # A worker that starts may be the one that replaces a killed worker: find what that one left behind
    # now, and once more when a batch it left can first count as stuck, so that recovery never depends
    # on beat alone, nor on the broker: Redis hands a dead worker's unacknowledged tasks out again only after
    # its visibility timeout, RabbitMQ at once when that worker's connection closes, and a task lost with the
    # broker's data comes back from neither.
    recover, redrive = app.tasks["orders.tasks.recover_stuck_batches"], app.tasks["recharge.tasks.redrive_fulfilments"]
    for countdown in (0, settings.BATCH_PLACING_TIMEOUT_SECONDS + 1):
        recover.apply_async(countdown=countdown)
    for countdown in (0, settings.RECHARGE_REDRIVE_AFTER_SECONDS + 1):
        redrive.apply_async(countdown=countdown)


@signals.worker_init.connect
def skip_connection_health_checks(**kwargs):
    # Django's CONN_HEALTH_CHECKS sends a `SELECT 1` on a kept connection before its first query after each
    # close_old_connections(), that is before every task here: one round trip in three of a placed row, a fifth
    # of place_row's time. A worker learns of a broken connection by using it instead: the task fails with an
    # OperationalError and is retried (DatabaseRetryingTask), and close_old_connections() below drops the
    # connection that failed. Web processes keep the check, where the failure would be a customer's error page.
    # Pool children are forked after this, so they inherit it; connections read it when they connect.
    for database in settings.DATABASES.values():
        database["CONN_HEALTH_CHECKS"] = False


@signals.task_prerun.connect
@signals.task_postrun.connect
def _drop_broken_or_old_connections(**kwargs):
    # Celery keeps the worker's database connection across tasks (CELERY_DB_REUSE_MAX): opening one
    # per task cost more than the task itself. What Django does around each web request, done around
    # each task: a connection that broke (a PostgreSQL restart) or outlived CONN_MAX_AGE is replaced.
    close_old_connections()
