"""`python -m bench.load`: concurrent API clients against the production shape (docs/reliability.md, "Load").

It starts what production runs, on services of its own: gunicorn (DEBUG off, the README's `--workers 4`),
one Celery worker with the README's queues and 2 pool processes, beat, a private redis-server (broker,
result backend and the throttles' cache) and a PostgreSQL database created for the run and dropped after it.
Then `--clients` threads (bench/load_clients.py), each an integrator with a user and API token of its own,
loop for `--duration` seconds: submit a batch of `--rows` rows, poll it until it has its merged payment, pay
it at the sandbox gateway as a shopper would, poll it until it is paid. When the time is up no new batch is
submitted and those in flight are followed to the end (at most `--drain` seconds), then the invariant checker
(`manage.py check_invariants`) runs on the database. Exit status 1 on any 5xx, any other answer the flow does
not expect (or no answer), any batch failed or left unfinished, or any invariant violated; 2 when it could
not run (a service did not start, the warm-up batch did not get paid).

The API's per-user and batch-submission throttles are lifted (bench.infra.service_environment): each client
is one integrator sending a request every poll interval, which production's 600/minute per user would allow,
but a slow run must measure the site, not the throttle. Tokens are made in the database, not through the
token endpoint (10/minute per address).

    python -m bench.load --clients 20 --duration 60 --rows 10 --json var/load.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import load_report, report
from bench.cli import (
    close_django_connections,
    code_version,
    configure_django,
    positive_count,
    postgres_version,
    redis_version,
)
from bench.infra import LOG_DIR, WORKER_QUEUES, BenchDatabase, BenchError, service_environment
from bench.load_clients import GAMES, GOODS, Client, Http, Journey
from tests.support.services import (
    ROOT,
    BeatProcess,
    Broker,
    PrivateRedis,
    ServiceError,
    WebProcess,
    WorkerProcess,
    free_port,
)
from tests.support.waiting import WaitTimeout, wait_until

# How long the top-ups of the last batches may take before the checker runs anyway (they are not stuck for
# the checker until RECHARGE_REDRIVE_AFTER_SECONDS and beat's period have passed).
TOP_UP_WAIT_SECONDS = 60


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=positive_count, default=20, help="concurrent API clients (default 20)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of submitting (default 60)")
    parser.add_argument("--rows", type=positive_count, default=10, help="rows per batch (default 10)")
    parser.add_argument(
        "--poll-interval", type=float, default=0.5, help="seconds between a client's polls of its batch (default 0.5)"
    )
    parser.add_argument(
        "--drain", type=float, default=120.0, help="seconds batches in flight at the end may take (default 120)"
    )
    parser.add_argument("--web-workers", type=positive_count, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--concurrency", type=positive_count, default=2, help="Celery pool processes (default 2)")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--keep-logs", action="store_true", help="keep the services' logs (kept anyway on failure)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    args.command = " ".join(["python -m bench.load", *argv])
    # A SIGTERM (a CI timeout, a test's subprocess kill) still runs the clean-up below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    database = BenchDatabase(os.environ.get("DATABASE_URL"))
    redis_server = PrivateRedis()
    # The static files and beat's schedule, removed at the end.
    scratch = Path(tempfile.mkdtemp(prefix="batchpay-load-"))
    services: list[WebProcess | WorkerProcess | BeatProcess] = []
    document = None
    try:
        database.create()
        port = free_port()
        redis_url = redis_server.start()
        environment = {
            **service_environment(database_url=database.url, broker=Broker(url=redis_url, result_backend=redis_url)),
            "SITE_URL": f"http://127.0.0.1:{port}",
            # collectstatic writes here, not into the checkout: the pages need the manifest whitenoise serves.
            "STATIC_ROOT": str(scratch / "static"),
            # Receipts are written as in production and dropped instead of sent.
            "EMAIL_URL": "dummymail://",
        }
        configure_django(environment)
        _progress(f"database {database.name}: migrating, collecting the static files, {args.clients} users")
        tokens = prepare_database(args.clients)
        document = run(args, environment, port, tokens, redis_server.url, services, scratch)
    except (BenchError, ServiceError, WaitTimeout) as error:
        print(f"bench.load: {error}", file=sys.stderr)
        return 2
    finally:
        for service in reversed(services):
            service.stop()
            # Logs are kept when something went wrong, or when asked for.
            if document is not None and document["ok"] and not args.keep_logs:
                service.log_path.unlink(missing_ok=True)
            else:
                print(f"bench.load: log kept: {service.log_path}", file=sys.stderr)
        close_django_connections()
        redis_server.stop()
        database.drop()
        shutil.rmtree(scratch, ignore_errors=True)

    print(load_report.render(document))
    if args.json:
        args.json.write_text(json.dumps(document, indent=2))
        print(f"\nJSON: {args.json}")
    return 0 if document["ok"] else 1


def prepare_database(clients: int) -> list[str]:
    """Migrate, collect the static files, add the catalogue and one user with an API token per client."""
    from decimal import Decimal

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from orders.models import Product

    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    for sku, price, stock in GOODS:
        Product.objects.create(sku=sku, name=sku, kind="goods", unit_price=Decimal(price), stock=stock)
    for sku, price in GAMES:
        Product.objects.create(
            sku=sku,
            name=sku,
            kind="game",
            unit_price=Decimal(price),
            attributes={"account_pattern": r"user-[0-9]{4,12}"},
        )
    tokens = []
    for index in range(clients):
        # An e-mail address, so that every paid batch sends its receipts as in production.
        user = get_user_model().objects.create_user(f"load-client-{index}", f"load-client-{index}@example.com")
        tokens.append(Token.objects.create(user=user).key)
    return tokens


def run(
    args: argparse.Namespace,
    environment: dict[str, str],
    port: int,
    tokens: list[str],
    redis_url: str,
    services: list[WebProcess | WorkerProcess | BeatProcess],
    scratch: Path,
) -> dict:
    worker, beat, web = _start_shop(args, environment, port, services, scratch)
    _progress("warming up: one batch from submission to paid")
    warm_up = _client(args, web, tokens[0], 0, http=Http(), end=0, deadline=time.monotonic() + 60).journey()
    if warm_up.outcome != "paid":
        raise BenchError(f"the warm-up batch did not get paid: {warm_up.outcome}")

    machine = report.machine(postgres_version=postgres_version(), redis_version=redis_version(redis_url))
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    cpu = load_report.CpuMeter(web=web, worker=worker, beat=beat, redis_pid=_redis_pid(redis_url))
    http = Http()
    started = time.monotonic()
    end = started + args.duration
    clients = [
        _client(args, web, token, index, http=http, end=end, deadline=end + args.drain)
        for index, token in enumerate(tokens)
    ]
    _progress(f"{args.clients} clients for {args.duration:g} s")
    cpu.start()
    log_from = worker.log_path.stat().st_size
    for client in clients:
        client.start()
    time.sleep(max(0.0, end - time.monotonic()))
    cpu_used = cpu.stop(seconds=time.monotonic() - started)
    worker_log = _read_lines(worker.log_path, start=log_from, end=worker.log_path.stat().st_size)
    machine["load_average_at_end"] = [round(load, 2) for load in os.getloadavg()]
    _progress(f"following the batches in flight (at most {args.drain:g} s)")
    for client in clients:
        client.join()
    drained = time.monotonic() - end
    top_ups = _wait_for_top_ups()
    _progress("checking the invariants")
    checker = _check_invariants(environment)

    journeys = [journey for client in clients for journey in client.journeys]
    document = load_report.figures(answers=http.answers, journeys=journeys, started=started, end=end)
    document.update(
        command=args.command,
        started_at=started_at,
        machine=machine,
        code=code_version(),
        settings={
            "clients": args.clients,
            "duration_s": args.duration,
            "rows": args.rows,
            "poll_interval_s": args.poll_interval,
            "drain_s": args.drain,
            "web_workers": args.web_workers,
            "worker_concurrency": args.concurrency,
        },
        cpu=cpu_used,
        worker=load_report.worker_tasks(worker_log, seconds=args.duration, concurrency=args.concurrency),
        server_s=_server_times(journeys),
        drain_s=round(drained, 2),
        top_ups=top_ups,
        checker=checker,
    )
    document["failures"] = load_report.failures(document)
    document["ok"] = not document["failures"]
    return document


def _start_shop(
    args: argparse.Namespace,
    environment: dict[str, str],
    port: int,
    services: list[WebProcess | WorkerProcess | BeatProcess],
    scratch: Path,
) -> tuple[WorkerProcess, BeatProcess, WebProcess]:
    """The README's production shape: one worker on every queue, one beat, gunicorn."""
    pid = os.getpid()
    worker = WorkerProcess(
        environment=environment,
        queues=WORKER_QUEUES,
        concurrency=args.concurrency,
        log_path=LOG_DIR / f"load-worker-{pid}.log",
        hostname=f"load-{pid}@%h",
    )
    beat = BeatProcess(
        environment=environment, log_path=LOG_DIR / f"load-beat-{pid}.log", schedule_path=scratch / "beat-schedule"
    )
    web = WebProcess(
        environment=environment, log_path=LOG_DIR / f"load-web-{pid}.log", workers=args.web_workers, port=port
    )
    _progress("starting the worker, beat and gunicorn")
    services.extend(service.start() for service in (worker, beat, web))
    worker.wait_ready()
    web.wait_ready()
    return worker, beat, web


def _client(
    args: argparse.Namespace, web: WebProcess, token: str, index: int, *, http: Http, end: float, deadline: float
) -> Client:
    return Client(
        index=index,
        site_url=web.url,
        token=token,
        http=http,
        rows=args.rows,
        poll_interval=args.poll_interval,
        end=end,
        deadline=deadline,
    )


def _progress(message: str) -> None:
    print(f"bench.load: {message}", file=sys.stderr, flush=True)


def _read_lines(path: Path, *, start: int, end: int) -> str:
    """The whole lines written to `path` between two sizes of it."""
    with open(path, "rb") as log:
        log.seek(start)
        text = log.read(end - start)
    return text[: text.rfind(b"\n") + 1].decode(errors="replace")


def _server_times(journeys: list[Journey]) -> dict[str, dict[str, float]]:
    """The server's side of a journey, from the database: placing (the batch recorded → placing finished,
    i.e. its rows waiting in the placing queue and placed, and the callback) and the notification's trip
    (Pay answered → the payment recorded as paid: the gateway's delivery task waiting in the queue, its
    request to the webhook, the webhook)."""
    from payments.models import Payment

    pay_answered = {journey.batch_id: journey.pay_answered_at for journey in journeys if journey.pay_answered_at}
    payments = Payment.objects.filter(batch_id__in=[journey.batch_id for journey in journeys if journey.batch_id])
    placing, notification = [], []
    for batch_id, created, placed, paid in payments.values_list(
        "batch_id", "batch__created_at", "batch__placed_at", "paid_at"
    ):
        if placed is not None:  # a batch with a payment has finished placing
            placing.append((placed - created).total_seconds())
        if paid is not None and str(batch_id) in pay_answered:
            notification.append(paid.timestamp() - pay_answered[str(batch_id)])
    return {"placing": load_report.percentiles(placing), "notification": load_report.percentiles(notification)}


def _redis_pid(url: str) -> int:
    import redis

    return int(redis.Redis.from_url(url).info("server")["process_id"])


def _wait_for_top_ups() -> dict[str, int]:
    """Let the last paid batches' top-ups end (bounded); returns the fulfilments by status."""
    from django.db.models import Count

    from recharge.models import Fulfilment

    ongoing = [Fulfilment.Status.PENDING, Fulfilment.Status.IN_PROGRESS, Fulfilment.Status.UNKNOWN]
    # If they do not end in time, the statuses below say so and the checker whether any is stuck.
    with contextlib.suppress(WaitTimeout):
        wait_until(
            lambda: not Fulfilment.objects.filter(status__in=ongoing).exists(),
            timeout=TOP_UP_WAIT_SECONDS,
            interval=0.5,
            what="the top-ups to end",
        )
    return dict(Fulfilment.objects.values_list("status").annotate(count=Count("pk")).order_by("status"))


def _check_invariants(environment: dict[str, str]) -> dict:
    """`manage.py check_invariants` on the run's database, as an operator would run it."""
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "manage.py", "check_invariants"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return {
        "exit_status": completed.returncode,
        "output": (completed.stdout + completed.stderr).strip(),
        "seconds": round(time.monotonic() - started, 2),
    }


if __name__ == "__main__":
    raise SystemExit(main())
