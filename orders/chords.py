"""A Celery chord whose header is published one message at a time.

`chord(header)(callback)` first builds every header signature, freezes an AsyncResult for each, registers
them all as pending results of one GroupResult (subscribing to each task's result channel) and only then
publishes: about 6 KB per task, 31 MB for a 5,000-row batch, and CPython keeps the worker process that
large afterwards. The chord needs none of that. With the Redis result backend, every header task carries
the group id and the callback; each stores its result under the group and counts it against the chord's
size, stored under the group id too; the last one to finish publishes the callback with every result.
`chord_publish` sends exactly those messages, after storing the size, and keeps nothing of the ones sent:
the dispatching process holds one message at a time, whatever the size of the header.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from celery import chord, current_app, uuid
from celery.backends.redis import RedisBackend
from celery.canvas import Signature
from django.core.exceptions import ImproperlyConfigured


def chord_publish(header: Iterable[Signature[Any]], *, size: int, callback: Signature[Any]) -> None:
    """Run `header` as a chord of `size` tasks whose results go, all together, to `callback`."""
    app = current_app
    if app.conf.task_always_eager:
        # No broker and no result backend: Celery runs the whole chord in this process, as it is.
        chord(list(header))(callback)
        return
    backend = app.backend
    if not isinstance(backend, RedisBackend):
        raise ImproperlyConfigured(
            f"CELERY_RESULT_BACKEND must be Redis: the placing chord counts its results there, not in {backend!r}"
        )
    group_id = uuid()
    # Before the first task is sent: a task that finishes early must find the size it counts against.
    backend.set_chord_size(group_id, size)
    with app.producer_or_acquire() as producer:
        for index, signature in enumerate(header):
            signature.apply_async(
                producer=producer,
                group_id=group_id,
                group_index=index,
                chord=callback,
                # Not kept on the dispatching task's request either: its result would list every header task.
                add_to_parent=False,
            )
