"""Test harness: a private Redis and a real Celery worker process that share the test database.

Tests that need the worker ask for the `worker` fixture: it gives them a transactional database
(the worker is another process and sees only committed rows) and a worker that consumes every queue
from a Redis no other test run shares. A test that needs workers of its own (to kill one) starts them
with `start_worker` on a `private_broker` (or `private_redis`) of its own and points this process at it
with `celery_on`. The services themselves are in tests/support, shared with the benchmark.

The broker is Redis. Tests marked `every_broker` (the placing pipeline's worker tests and the worker-kill
tests) run on RabbitMQ too: for them the `broker` fixture, which `worker` and `private_broker` build on, is
parametrised (ids `redis`, `rabbitmq`). The `rabbitmq` variants use a virtual host of this run's own on the
RabbitMQ that TEST_RABBITMQ_URL names (default amqp://guest:guest@127.0.0.1:5672/), with this run's Redis as
result backend; they are skipped when that RabbitMQ does not answer, unless TEST_RABBITMQ_URL is set (CI).
"""

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from config.celery import app as celery_app
from tests.support.services import (
    BeatProcess,
    Broker,
    PrivateRedis,
    RabbitVhost,
    ServiceError,
    WebProcess,
    WorkerProcess,
    free_port,
)
from tests.support.waiting import wait_until as poll_until

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / "var" / "test-logs"
# Where the worker's mail goes (Django's file backend: one file per message), read by the `worker_mail` fixture.
# The tests' own process keeps Django's in-memory outbox.
WORKER_MAIL_DIR = Path("var") / "test-mail" / str(os.getpid())
BROKER_KINDS = ("redis", "rabbitmq")
DEFAULT_RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"


# The live server (pytest-django's `live_server`) gets a port chosen now, so that the worker process can
# be told where the site is: the sandbox gateway calls the site's webhook from the worker.
LIVE_SERVER_ADDRESS = os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", f"127.0.0.1:{free_port()}")
settings.SITE_URL = f"http://{LIVE_SERVER_ADDRESS}"


@pytest.fixture(scope="session", autouse=True)
def redis_url():
    """A Redis for this test run alone: TEST_REDIS_URL if given, else a private redis-server on a free port."""
    server = PrivateRedis(os.environ.get("TEST_REDIS_URL"))
    try:
        url = server.start()
    except ServiceError as error:
        pytest.exit(f"{error}, and TEST_REDIS_URL is not set", returncode=2)
    settings.CELERY_BROKER_URL = settings.CELERY_RESULT_BACKEND = settings.REDIS_URL = url
    point_celery_app(broker_url=url, result_backend=url)
    # The throttles count in the cache: this run's Redis too (set before any request opened the cache).
    settings.CACHES["default"]["LOCATION"] = url
    yield url
    server.stop()


def point_celery_app(*, broker_url: str, result_backend: str) -> None:
    """Send this process's tasks, control messages and result reads to another broker and result backend,
    with the transport options a process configured for that broker has.

    The app caches its broker connection pool, its producer pool and its result backend on first use;
    they are dropped so that the next use builds them for the new URLs (kombu keeps one connection pool
    per URL, so pointing back finds the original one intact).
    """
    is_rabbitmq = Broker(url=broker_url, result_backend=result_backend).kind == "rabbitmq"
    celery_app.conf.update(
        broker_url=broker_url,
        result_backend=result_backend,
        broker_transport_options=(
            settings.RABBITMQ_TRANSPORT_OPTIONS if is_rabbitmq else settings.REDIS_TRANSPORT_OPTIONS
        ),
    )
    # Private caches, which celery-types does not declare.
    celery_app._pool = None  # type: ignore[attr-defined]
    celery_app.amqp._producer_pool = None  # type: ignore[attr-defined]
    celery_app._backend_cache = None  # type: ignore[attr-defined]
    celery_app._local.__dict__.pop("backend", None)  # type: ignore[attr-defined]


def pytest_generate_tests(metafunc):
    # Only tests marked every_broker get the RabbitMQ variant; every other test keeps the one Redis broker,
    # with its id unchanged.
    if "broker" in metafunc.fixturenames and metafunc.definition.get_closest_marker("every_broker"):
        metafunc.parametrize("broker", BROKER_KINDS, indirect=True)


@pytest.fixture(scope="session")
def rabbitmq_url():
    """A RabbitMQ virtual host for this test run alone, deleted at the end (see the module's docstring)."""
    given = os.environ.get("TEST_RABBITMQ_URL")
    vhost = RabbitVhost(given or DEFAULT_RABBITMQ_URL, default_name=f"batchpay-test-{os.getpid()}")
    try:
        url = vhost.start()
    except ServiceError as error:
        if given:
            pytest.fail(f"TEST_RABBITMQ_URL: {error}", pytrace=False)
        pytest.skip(f"the RabbitMQ variants need a RabbitMQ on 127.0.0.1:5672 or TEST_RABBITMQ_URL ({error})")
    yield url
    vhost.stop()


@pytest.fixture
def broker(request, redis_url) -> Broker:
    """The broker this test runs on: this run's Redis, or (the `rabbitmq` variant of a test marked
    every_broker) this run's RabbitMQ virtual host; the result backend is this run's Redis either way."""
    if getattr(request, "param", "redis") == "redis":
        return Broker(url=redis_url, result_backend=redis_url)
    return Broker(url=request.getfixturevalue("rabbitmq_url"), result_backend=redis_url)


@pytest.fixture
def private_broker(broker, private_redis):
    """Start a broker of the test's own, of the kind the test runs on (stopped when the test ends): a
    redis-server that is its own result backend, or a RabbitMQ virtual host with a redis-server for results."""
    vhosts = []

    def start() -> Broker:
        results = private_redis()
        if broker.kind == "redis":
            return Broker(url=results, result_backend=results)
        server = os.environ.get("TEST_RABBITMQ_URL") or DEFAULT_RABBITMQ_URL
        vhost = RabbitVhost(server, default_name=f"batchpay-test-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        vhosts.append(vhost)
        return Broker(url=vhost.start(), result_backend=results)

    yield start
    for vhost in vhosts:
        vhost.stop()


@pytest.fixture
def celery_on():
    """Point this process's Celery app at another broker (and result backend) until the test ends."""
    original = {"broker_url": celery_app.conf.broker_url, "result_backend": celery_app.conf.result_backend}

    def point(broker_url: str, *, result_backend: str | None = None) -> None:
        point_celery_app(broker_url=broker_url, result_backend=result_backend or celery_app.conf.result_backend)

    yield point
    point_celery_app(**original)


@pytest.fixture
def private_redis():
    """Start a redis-server of the test's own (stopped when the test ends); returns its URL."""
    servers = []

    def start() -> str:
        server = PrivateRedis()
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


def _database_url(db_settings: dict) -> str:
    host = db_settings.get("HOST") or "127.0.0.1"
    port = db_settings.get("PORT") or 5432
    user = db_settings.get("USER") or "postgres"
    password = f":{db_settings['PASSWORD']}" if db_settings.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{host}:{port}/{db_settings['NAME']}"


def _test_database_url() -> str:
    db_settings = settings.DATABASES["default"]
    if db_settings["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("the worker tests need PostgreSQL (DATABASE_URL=postgres://...)")
    return _database_url(db_settings)


@pytest.fixture
def test_database_url(transactional_db) -> str:
    """The test database's URL, for a connection of the test's own outside Django's (e.g. to hold a lock)."""
    return _test_database_url()


def worker_environment(broker_url: str, *, result_backend: str | None = None, **overrides: str) -> dict[str, str]:
    """The environment of a worker (or beat) on `broker_url`, sharing the test database and the test's settings.
    The result backend is `result_backend`, or the broker itself when that is a Redis."""
    return {
        **os.environ,
        # The tests' settings (test-only apps too); a settings override (live_server's) hides SETTINGS_MODULE.
        "DJANGO_SETTINGS_MODULE": settings.SETTINGS_MODULE or os.environ["DJANGO_SETTINGS_MODULE"],
        "DATABASE_URL": _test_database_url(),
        **Broker(url=broker_url, result_backend=result_backend or broker_url).environment(),
        "SECRET_KEY": settings.SECRET_KEY,
        "SANDBOX_WEBHOOK_SECRET": settings.SANDBOX_WEBHOOK_SECRET,
        "DATABASE_CONN_MAX_AGE": "0",
        "SITE_URL": settings.SITE_URL,
        # Relative to the worker's directory (ROOT): django-environ reads "filemail:///x" as the path "x".
        "EMAIL_URL": f"filemail:///{WORKER_MAIL_DIR}",
        # Retries and status queries of top-ups in tenths of a second instead of tens.
        "RECHARGE_RETRY_BASE_SECONDS": "0.2",
        "RECHARGE_QUERY_DELAY_SECONDS": "0.3",
        **overrides,
    }


def _start_worker(broker_url: str, name: str, *, result_backend: str | None = None, **overrides: str) -> WorkerProcess:
    """A real `celery worker` on `broker_url`, sharing the test database and the test's settings."""
    worker = WorkerProcess(
        environment=worker_environment(broker_url, result_backend=result_backend, **overrides),
        queues=[queue.name for queue in settings.CELERY_TASK_QUEUES],
        concurrency=2,
        log_path=LOG_DIR / f"{name}-{os.getpid()}.log",
        hostname=f"{name}-{os.getpid()}@%h",
        options=["--without-gossip", "--without-mingle"],
    )
    worker.start()
    try:
        return worker.wait_ready(timeout=60)
    except Exception:
        worker.stop()
        raise


@pytest.fixture
def start_worker(transactional_db):
    """Start workers of the test's own, each on a given broker (and result backend, when the broker is not a
    Redis that keeps the results too); every one still running is stopped at the end."""
    workers = []

    def start(broker_url: str, name: str, *, result_backend: str | None = None, **overrides: str) -> WorkerProcess:
        workers.append(_start_worker(broker_url, name, result_backend=result_backend, **overrides))
        return workers[-1]

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def start_beat(transactional_db):
    """Start a real `celery beat` on a given broker, with the project's schedule; stopped when the test ends."""
    beats = []

    def start(broker_url: str, name: str = "beat", *, result_backend: str | None = None) -> BeatProcess:
        beat = BeatProcess(
            environment=worker_environment(broker_url, result_backend=result_backend),
            log_path=LOG_DIR / f"{name}-{os.getpid()}.log",
            schedule_path=ROOT / "var" / f"{name}-{os.getpid()}-schedule",
        )
        beats.append(beat.start())
        return beat

    yield start
    for beat in beats:
        beat.stop()


class ServerProcess(WebProcess):
    """The site as production runs it — gunicorn, DEBUG off — on the test database and this run's Redis.

    Rows a test wants the server to see must be committed (use it with `transactional_db`).
    """

    def __init__(self, name: str, *, workers: int = 1, environment: dict[str, str] | None = None):
        db_settings = settings.DATABASES["default"]
        if db_settings["ENGINE"] != "django.db.backends.postgresql":
            pytest.skip("the live server tests need PostgreSQL (DATABASE_URL=postgres://...)")
        super().__init__(
            environment={
                **os.environ,
                "SECRET_KEY": settings.SECRET_KEY,
                "DATABASE_URL": _database_url(db_settings),
                "DATABASE_CONN_MAX_AGE": "0",
                "REDIS_URL": settings.REDIS_URL,
                "CELERY_BROKER_URL": settings.REDIS_URL,
                "CELERY_RESULT_BACKEND": settings.REDIS_URL,
                "SANDBOX_WEBHOOK_SECRET": settings.SANDBOX_WEBHOOK_SECRET,
                **(environment or {}),
            },
            log_path=LOG_DIR / f"{name}-{os.getpid()}.log",
            workers=workers,
        )
        self.start()

    def wait_ready(self, timeout: float = 60) -> "ServerProcess":
        try:
            super().wait_ready(timeout)
        except ServiceError as error:
            pytest.fail(str(error))
        return self


@pytest.fixture
def start_server(transactional_db, redis_url):
    """Start gunicorn processes for one test: `start_server(name, workers=1, environment={...})`."""
    started = []

    def start(name: str, **kwargs) -> ServerProcess:
        server = ServerProcess(name, **kwargs)
        started.append(server)
        return server.wait_ready()

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, redis_url):
    """The worker most tests share, bound to the private Redis and to the test database."""
    worker = _start_worker(redis_url, "test-worker")
    try:
        yield worker
    finally:
        worker.stop()


@pytest.fixture(scope="session")
def celery_rabbitmq_worker_process(django_db_setup, django_db_blocker, rabbitmq_url, redis_url):
    """The worker the `rabbitmq` variants share: on this run's RabbitMQ virtual host, results in its Redis."""
    worker = _start_worker(rabbitmq_url, "test-worker-rabbitmq", result_backend=redis_url)
    try:
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def worker(request, transactional_db, broker, celery_on):
    """Use in tests that need a real worker: the database is committed for real so the worker sees it.
    This process's Celery app publishes to the worker's broker until the test ends."""
    shared = "celery_worker_process" if broker.kind == "redis" else "celery_rabbitmq_worker_process"
    process = request.getfixturevalue(shared)
    celery_on(broker.url, result_backend=broker.result_backend)
    celery_app.control.purge()
    yield process
    celery_app.control.purge()


# django-simple-captcha's test-only mode accepts this answer to any challenge (and checks any other as usual),
# so tests never need to read a captcha.
CAPTCHA_TEST_ANSWER = "passed"


@pytest.fixture(autouse=True)
def captcha_test_mode(monkeypatch):
    from captcha.conf import settings as captcha_settings

    # The library reads its settings once at import, so the switch is on its settings module.
    monkeypatch.setattr(captcha_settings, "CAPTCHA_TEST_MODE", True)


@pytest.fixture
def wait_until():
    return poll_until


@pytest.fixture
def worker_mail(worker):
    """The messages the worker sent during this test, as email.message.Message objects, oldest first."""
    import email
    import email.policy

    folder = ROOT / WORKER_MAIL_DIR
    shutil.rmtree(folder, ignore_errors=True)

    def messages():
        if not folder.exists():
            return []
        # The file backend appends each message followed by a line of 79 dashes.
        return [
            email.message_from_bytes(chunk.lstrip(), policy=email.policy.default)
            for path in sorted(folder.iterdir(), key=lambda path: path.stat().st_mtime)
            for chunk in path.read_bytes().split(b"\n" + b"-" * 79 + b"\n")
            if chunk.strip()
        ]

    yield messages
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def user(db):
    from tests.factories import UserFactory

    return UserFactory()


@pytest.fixture
def api_client(user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(user=user)
    return client


@pytest.fixture
def wait_for_batch(wait_until):
    """Wait until placing of a batch has ended (any status but placing) and return it fresh."""
    from orders.models import Batch

    def wait(batch_id, *, timeout: float = 60):
        return wait_until(
            lambda: Batch.objects.exclude(status=Batch.Status.PLACING).filter(pk=batch_id).first(),
            timeout=timeout,
            what=f"batch {batch_id} to finish placing",
        )

    return wait


@pytest.fixture
def wait_for_idle_worker(wait_until):
    """Wait until the worker(s) on this process's broker answer with nothing running or reserved and
    the queues are empty. A worker that does not answer in time is not taken for an idle one."""

    def idle() -> bool:
        inspect = celery_app.control.inspect(timeout=1)
        active, reserved = inspect.active(), inspect.reserved()
        if not active or not reserved:
            return False
        busy = any(active.values()) or any(reserved.values())
        return not busy and not queued_messages()

    def wait(timeout: float = 30):
        wait_until(idle, timeout=timeout, what="the worker to be idle")

    return wait


def queued_messages() -> int:
    """Messages waiting in the project's queues on this process's broker, Redis or RabbitMQ alike (neither
    counts what a worker has received and not yet acknowledged)."""
    total = 0
    with celery_app.connection_for_read() as connection:
        for queue in settings.CELERY_TASK_QUEUES:
            # kombu's StdChannel type leaves queue_declare and close out; every transport's channel has them.
            channel: Any = connection.channel()
            try:
                total += channel.queue_declare(queue=queue.name, passive=True).message_count
            except connection.channel_errors:
                pass  # not declared yet (RabbitMQ) or empty (Redis keeps no empty list): nothing waits in it
            finally:
                with contextlib.suppress(*connection.connection_errors, *connection.channel_errors):
                    channel.close()
    return total


@pytest.fixture
def place_batch(user):
    """Submit, place and finalise a batch synchronously through the services (no worker): the real path."""
    from tests.orders.pipeline import batch_place

    def place(rows, *, owner=None, **options):
        return batch_place(owner=owner or user, rows=rows, **options)

    return place


@pytest.fixture
def carrier_discounts(db):
    """The migration's default discounts, again: a transactional test before this one flushed every table."""
    from decimal import Decimal

    from recharge.models import CarrierDiscount

    for carrier, discount in {"China Mobile": "0.990", "China Unicom": "0.985", "China Telecom": "0.980"}.items():
        CarrierDiscount.objects.update_or_create(carrier=carrier, defaults={"discount": Decimal(discount)})


@pytest.fixture
def placed_batch(place_batch):
    """A batch of goods placed synchronously through the services (no worker): its payment is pending."""
    from decimal import Decimal

    from tests.orders.factories import ProductFactory

    def place(prices=("10.00", "20.00", "30.00"), owner=None):
        rows = []
        for index, price in enumerate(prices):
            ProductFactory(sku=f"ITEM-{index}", unit_price=Decimal(price), stock=5)
            rows.append({"kind": "goods", "sku": f"ITEM-{index}"})
        return place_batch(rows, owner=owner)

    return place
