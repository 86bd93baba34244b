"""The Celery application. Its configuration lives in Django settings under the CELERY_ prefix."""

import os

from celery import Celery, signals
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("batchpay")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def _drop_broken_or_old_connections(**kwargs):
    # Celery keeps the worker's database connection across tasks (CELERY_DB_REUSE_MAX): opening one
    # per task cost more than the task itself. What Django does around each web request, done around
    # each task: a connection that broke (a PostgreSQL restart) or outlived CONN_MAX_AGE is replaced.
    close_old_connections()
