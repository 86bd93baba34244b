"""The floor of one-task-per-row: the placing pipeline's shape with the work taken out.

Like `orders.tasks`, a dispatch task publishes one chord of one task per row (deterministic task ids, the
batch marker as argument), each returning an entry of the same shape as `PlacementResult.entry()`, with a
callback that receives every result. None of them touches the database. They run on the `placing`
queue of the same workers, with the same Celery settings, so that place/floor is the cost of placing
itself. The benchmark's workers load this module with `--include bench.tasks`.
"""

from functools import cache
from typing import Any

import redis
from celery import current_app, shared_task

from orders.chords import chord_publish

# The callback pushes here; the benchmark waits on it with BLPOP instead of calling .get() on the chord,
# which would add its own polling of the result backend to what is measured.
DONE_KEY = "bench:floor:{run_id}:done"


@shared_task(queue="placing")
def floor_dispatch(run_id: str, row_count: int) -> int:
    header = (
        floor_row.signature((run_id, index), task_id=f"{run_id}:{index}", immutable=True) for index in range(row_count)
    )
    chord_publish(header, size=row_count, callback=floor_done.s(run_id))
    return row_count


@shared_task(queue="placing")
def floor_row(run_id: str, row_index: int) -> dict[str, Any]:
    # The same shape as PlacementResult.entry(): the chord carries as many bytes.
    return {"row": row_index, "ok": True}


@shared_task(queue="placing")
def floor_done(results: list[dict[str, Any]], run_id: str) -> int:
    key = DONE_KEY.format(run_id=run_id)
    client = _redis()
    client.rpush(key, len(results))
    client.expire(key, 3600)
    return len(results)


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(current_app.conf.result_backend)
