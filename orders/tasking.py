"""Queueing a task from a service without importing the tasks module (tasks import services, never the
reverse). The task is looked up in the Celery app's registry by name, so routing, eager mode and the
publish retry policy apply exactly as for `.delay()`."""

from __future__ import annotations

from celery import current_app


def queue_task(name: str, *args) -> None:
    current_app.tasks[name].delay(*args)
