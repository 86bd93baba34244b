"""Where the time goes: pyinstrument over the accept path, the order interface and the callback, in this
process (`python -m bench --profile PATH`). pyinstrument is not a requirement of the shop:
`pip install pyinstrument` first.

The placing profile calls the order interface as `place_row` does, on a connection kept open as the
workers keep theirs (and, for comparison, on a new one per row); what Celery itself costs per task is
what the floor measures.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from django.db import connection

from bench.measure import Shopper, as_the_callback_found_it, batch_rows, dispatch_suppressed
from orders import selectors, services
from orders.models import Batch

PLACING_ROWS = 300
FLAT_LINES = 30


def profile(shopper: Shopper, *, accept_rows: int, callback_batch: str, path: Path) -> None:
    try:
        from pyinstrument import Profiler
        from pyinstrument.renderers import ConsoleRenderer
    except ImportError:
        raise SystemExit("--profile needs pyinstrument: pip install pyinstrument") from None

    sections = []

    rows = batch_rows(accept_rows)
    with dispatch_suppressed(), Profiler(interval=0.0005) as accept:
        shopper.submit(rows)
    sections.append((f"accept: POST /api/v1/batches/ with {accept_rows:,} rows (enqueue excluded)", accept))

    # On a new connection per row (what a row cost before the workers kept theirs), and on one connection kept
    # open, as the workers do (CELERY_DB_REUSE_MAX).
    for new_connections, how in [
        (True, "a new connection each"),
        (False, "one connection kept open, as in the worker"),
    ]:
        with dispatch_suppressed():
            batch_id = shopper.submit(batch_rows(PLACING_ROWS))[0]
        connection.ensure_connection()
        with Profiler(interval=0.0005) as placing:
            for row_index in range(PLACING_ROWS):
                if new_connections:
                    connection.close()
                services.order_place(batch_id=batch_id, row_index=row_index)
        sections.append((f"placing: order_place for {PLACING_ROWS} rows, {how}", placing))

    # The callback on the largest batch the workers placed, replayed as it found that batch.
    batch = Batch.objects.get(pk=callback_batch)
    results = json.loads(json.dumps(selectors.batch_results_from_database(batch)))
    with as_the_callback_found_it(batch.pk), Profiler(interval=0.0005) as callback:
        services.batch_finalize(batch_id=batch.pk, results=results)
    sections.append((f"callback: batch_finalize of {batch.accepted_rows:,} rows (replayed)", callback))

    text = []
    for title, profiler in sections:
        text += [f"===== {title} =====", profiler.output_text(unicode=True, color=False, show_all=False)]
        # The same samples by function, own time only: which calls the waiting and the work are in.
        flat = ConsoleRenderer(unicode=True, color=False, flat=True, time="percent_of_total")
        ranked = [line for line in profiler.output(flat).splitlines() if re.match(r"\s*[0-9.]+%", line)]
        text += ["Top functions by own time:", *ranked[:FLAT_LINES], ""]
    path.write_text("\n".join(text))
