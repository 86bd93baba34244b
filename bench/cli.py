"""`python -m bench`: start the services, take the figures, print the table, clean up."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import warnings
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.infra import BenchDatabase, BenchError, BenchWorker, local_rabbitmq_pid, service_environment
from tests.support.services import AMQP_SCHEMES, ROOT, Broker, PrivateRedis, RabbitVhost, ServiceError
from tests.support.waiting import WaitTimeout

MAX_ROWS = 5000  # BATCH_MAX_ROWS, the largest batch the API accepts


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure batch placing on PostgreSQL, a private Redis (or RabbitMQ) and Celery workers of its own.",
    )
    parser.add_argument(
        "--broker",
        type=_broker,
        default="redis",
        help="redis (default: the private Redis) or amqp://user:password@host:5672/vhost: RabbitMQ, in a virtual "
        "host the benchmark creates and deletes (one of its own when the URL names none); Redis keeps the results",
    )
    parser.add_argument("--rows", type=_sizes, default=[100, 1000, 5000], help="batch sizes, e.g. 100,1000,5000")
    parser.add_argument(
        "--repeat", type=positive_count, default=3, help="runs per size; medians are reported (default 3)"
    )
    parser.add_argument("--workers", type=positive_count, default=2, help="worker pool processes (default 2)")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument(
        "--baseline-sample",
        type=positive_count,
        default=1000,
        help="at most this many one-order checkouts per baseline run; beyond, extrapolated linearly (default 1000)",
    )
    parser.add_argument("--profile", type=Path, help="also write a pyinstrument profile of the placing path here")
    parser.add_argument(
        "--shoppers",
        type=positive_count,
        default=20,
        help="many shoppers: this many API users POST a batch each at the same moment (default 20)",
    )
    parser.add_argument(
        "--shopper-rows", type=positive_count, default=50, help="rows in each many-shoppers batch (default 50)"
    )
    return parser.parse_args(argv)


def positive_count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _broker(text: str) -> str:
    if text == "redis" or text.startswith(AMQP_SCHEMES):
        return text
    raise argparse.ArgumentTypeError("give redis or amqp://user:password@host:5672/vhost")


def _sizes(text: str) -> list[int]:
    sizes = [positive_count(part) for part in text.split(",") if part.strip()]
    if not sizes or max(sizes) > MAX_ROWS:
        raise argparse.ArgumentTypeError(f"give sizes from 1 to {MAX_ROWS}, e.g. 100,1000,5000")
    return sizes


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    args.command = " ".join(["python -m bench", *argv])
    # A SIGTERM (a CI timeout, a test's subprocess kill) still runs the clean-up below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    database = BenchDatabase(os.environ.get("DATABASE_URL"))
    # BENCH_REDIS_URL names an existing Redis instead: one that nothing else uses, since the
    # benchmark's workers consume every queue on it (and, with RabbitMQ, read their results from it).
    redis_server = PrivateRedis(os.environ.get("BENCH_REDIS_URL"))
    vhost = None
    worker = document = None
    try:
        database.create()
        results = redis_server.start()
        if args.broker == "redis":
            broker = Broker(url=results, result_backend=results)
        else:
            # Named as the database is: this checkout and this process.
            vhost = RabbitVhost(args.broker, default_name=database.name.replace("_", "-"))
            broker = Broker(url=vhost.start(), result_backend=results)
        environment = service_environment(database_url=database.url, broker=broker)
        configure_django(environment)
        worker = BenchWorker(environment=environment, concurrency=args.workers)
        document = _run(args, database, broker, worker, _message_server_pids(broker, redis_server))
    except (BenchError, ServiceError, WaitTimeout) as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    finally:
        if worker is not None:
            worker.stop()
            # The worker's log is kept only when something went wrong.
            if document is not None:
                worker.log_path.unlink(missing_ok=True)
            else:
                print(f"bench: the worker's log is {worker.log_path}", file=sys.stderr)
        close_django_connections()
        if vhost is not None:
            vhost.stop()
        redis_server.stop()
        database.drop()

    from bench.report import render

    print(render(document))
    if args.json:
        args.json.write_text(json.dumps(document, indent=2))
        print(f"\nJSON: {args.json}")
    return 0


def configure_django(environment: dict[str, str]) -> None:
    """This process becomes a production web process on the benchmark's services."""
    for name in [name for name in os.environ if name.startswith("CELERY_")]:
        del os.environ[name]
    os.environ.update(environment)
    # whitenoise warns that collectstatic has not run: the API serves no static files.
    warnings.filterwarnings("ignore", "No directory at", UserWarning)
    import django

    django.setup()


def _run(args, database: BenchDatabase, broker: Broker, worker: BenchWorker, server_pids: list[int]) -> dict:
    from bench import measure, report

    shopper = measure.prepare_database()
    shoppers = [measure.Shopper(f"bench-shopper-{index}") for index in range(args.shoppers)]
    worker.start()
    worker.wait_ready()
    bench = measure.Benchmark(
        shopper=shopper,
        worker=worker,
        broker=broker,
        server_pids=server_pids,
        baseline_sample=args.baseline_sample,
    )
    bench.warm_up()
    document = {
        "command": args.command,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": report.machine(
            postgres_version=postgres_version(),
            redis_version=redis_version(broker.result_backend),
            rabbitmq_version=_rabbitmq_version(broker.url) if broker.kind == "rabbitmq" else None,
        ),
        "code": code_version(),
        "settings": {
            "broker": broker.kind,
            "broker_url": _without_password(broker.url),
            "rows": args.rows,
            "repeat": args.repeat,
            "workers": args.workers,
            "baseline_sample": args.baseline_sample,
            "shoppers": args.shoppers,
            "shopper_rows": args.shopper_rows,
            "database_server": database.server,
        },
        "worker_idle_rss_mb": bench.idle_worker_rss_mb(),
        "placing_sql": bench.placing_statements(),
    }
    runs = {row_count: bench.size(row_count, args.repeat) for row_count in args.rows}
    sizes = {row_count: report.size_summary(row_count, size_runs) for row_count, size_runs in runs.items()}
    document["sizes"] = {str(row_count): size for row_count, size in sizes.items()}
    document["many_shoppers"] = report.many_shoppers_summary(
        bench.many_shoppers(shoppers, rows_per_batch=args.shopper_rows, repeat=args.repeat),
        shoppers=args.shoppers,
        rows_per_batch=args.shopper_rows,
    )
    document["targets"] = report.targets(sizes, document["worker_idle_rss_mb"])
    document["machine"]["load_average_at_end"] = [round(load, 2) for load in os.getloadavg()]
    if args.profile:
        from bench.profiling import profile

        largest_batch = runs[max(args.rows)][-1]["batch_id"]
        profile(shopper, accept_rows=MAX_ROWS, callback_batch=largest_batch, path=args.profile)
        document["profile"] = str(args.profile)
    return document


def code_version() -> dict:
    """Which code was measured: the commit, and the files changed since it."""

    def git(*args) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"commit": git("rev-parse", "--short", "HEAD"), "uncommitted": git("status", "--porcelain").splitlines()}


def postgres_version() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return cursor.fetchone()[0].split()[0]


def redis_version(url: str) -> str:
    import redis

    return redis.Redis.from_url(url).info("server")["redis_version"]


def _message_server_pids(broker: Broker, redis_server: PrivateRedis) -> list[int]:
    """The processes of the broker and the results' Redis, when both run here and are known: the private
    redis-server, and the RabbitMQ node on this machine (shared: other users' traffic would count too)."""
    if redis_server.process is None:
        return []  # BENCH_REDIS_URL: a Redis we did not start
    pids = [redis_server.process.pid]
    if broker.kind == "rabbitmq":
        rabbitmq = local_rabbitmq_pid() if urlsplit(broker.url).hostname in ("127.0.0.1", "localhost") else None
        if rabbitmq is None:
            return []
        pids.append(rabbitmq)
    return pids


def _rabbitmq_version(url: str) -> str:
    from kombu import Connection

    with Connection(url) as connection:
        connection.connect()
        version = connection.connection.server_properties.get("version", "")
    return version.decode() if isinstance(version, bytes) else str(version)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))
    return url


def close_django_connections() -> None:
    if "django.db" in sys.modules:
        from django.db import connections

        connections.close_all()
