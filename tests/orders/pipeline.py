"""The real placing path, run synchronously in the test's own process: what the worker's tasks do,
through the same services, for tests that need real batches, orders and payments but not the worker."""

from collections.abc import Iterable
from contextlib import contextmanager
from unittest import mock

from orders import selectors, services
from orders.models import Batch, BatchRow


@contextmanager
def dispatch_suppressed():
    """Batches submitted inside are recorded but never queued for the worker (as if the dispatch was lost)."""
    with mock.patch("orders.services.submission.queue_task"):
        yield


def batch_place(
    *,
    owner,
    rows: list,
    place: Iterable[int] | None = None,
    finalize: bool | None = None,
    skip_invalid: bool = False,
) -> Batch:
    """Submit `rows` (`batch_submit`), place them one by one (`order_place`, as `place_row` does) and
    finalise the batch from the database (`batch_finalize`, as the chord callback does).

    `place`: only these row indexes (the batch then stays placing unless `finalize=True`). Nothing is
    queued, so a worker running beside the test never races it. Returns the batch, fresh.
    """
    with dispatch_suppressed():
        batch = services.batch_submit(owner=owner, rows=rows, skip_invalid=skip_invalid).batch
    accepted = list(
        batch.rows.exclude(outcome=BatchRow.Outcome.REJECTED).order_by("row_index").values_list("row_index", flat=True)
    )
    for row_index in accepted if place is None else place:
        services.order_place(batch_id=batch.pk, row_index=row_index)
    if finalize if finalize is not None else place is None:
        services.batch_finalize(batch_id=batch.pk, results=selectors.batch_results_from_database(batch))
    batch.refresh_from_db()
    return batch
