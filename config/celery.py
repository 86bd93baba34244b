"""The Celery application. Its configuration lives in Django settings under the CELERY_ prefix."""

import os

from celery import Celery, Task, signals
from django.db import InterfaceError, OperationalError, close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


class DatabaseRetryingTask(Task):
    """Every task retries transient database trouble (a restart, a failover, a dropped connection) with
    backoff; anything else is a bug and fails loudly, and the recovery jobs finish the work later. Tasks are
    idempotent, so running one again after a half-done attempt is safe."""

    autoretry_for = (OperationalError, InterfaceError)
    retry_backoff = True
    retry_backoff_max = 30
    max_retries = 8


app = Celery("batchpay", task_cls=DatabaseRetryingTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_ready.connect
def _sweep_when_a_worker_starts(sender, **kwargs):
    # A worker that starts may be the one that replaces a killed worker: find what that one left behind
    # now, and once more when a batch it left can first count as stuck, so that recovery never depends
    # on beat alone (or on the broker's visibility timeout, an hour by default).
    from django.conf import settings

    recover, redrive = app.tasks["orders.tasks.recover_stuck_batches"], app.tasks["recharge.tasks.redrive_fulfilments"]
    for countdown in (0, settings.BATCH_PLACING_TIMEOUT_SECONDS + 1):
        recover.apply_async(countdown=countdown)
    for countdown in (0, settings.RECHARGE_REDRIVE_AFTER_SECONDS + 1):
        redrive.apply_async(countdown=countdown)


@signals.task_prerun.connect
@signals.task_postrun.connect
def _drop_broken_or_old_connections(**kwargs):
    # Celery keeps the worker's database connection across tasks (CELERY_DB_REUSE_MAX): opening one
    # per task cost more than the task itself. What Django does around each web request, done around
    # each task: a connection that broke (a PostgreSQL restart) or outlived CONN_MAX_AGE is replaced.
    close_old_connections()
