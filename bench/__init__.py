"""The placing benchmark: `python -m bench` (see docs/performance.md).

It runs the real stack — PostgreSQL, a private Redis (or, with `--broker amqp://…`, RabbitMQ as broker in a
virtual host of its own, the Redis keeping the results) and Celery worker processes started with the
production settings — on a database of its own, and measures, for each batch size N:

- accept: `POST /api/v1/batches/` with N rows, from the request to the 202;
- place: from the 202 to the batch's merged payment existing;
- floor: the same workers running N no-op tasks as one chord with a callback;
- baseline: N one-row checkouts, each waited to its own payment, one after the other;
- costs: SQL statements and PostgreSQL connections per row, Redis commands per row (Redis as broker only),
  worker memory, and the chord callback's time and memory;

and once per run, many shoppers: 20 API users POST a 50-row batch each at the same moment, timed from the
first POST until all 20 merged payments exist, against 20 no-op chords of 50 dispatched at once.

Modules: `infra` holds the benchmark's own database and environment and reads the worker's memory
(imports no Django; the private Redis and the worker process are the test suite's, `tests.support`),
`measure` takes the figures, `report` prints the table and writes the JSON, `tasks` holds the no-op
tasks of the floor, `profiling` runs pyinstrument over the placing path, `cli` ties them together.

Beside it: `python -m bench.invariants` times the invariant checker on a large shop (docs/invariants.md), and
`python -m bench.load` runs concurrent API clients that submit, pay and follow batches against gunicorn, a
worker and beat (`load` starts them, `load_clients` are the clients, `load_report` the figures;
docs/reliability.md).
"""
