"""Test harness: a private Redis and a real Celery worker process that share the test database.

Tests that need the worker ask for the `worker` fixture: it gives them a transactional database
(the worker is another process and sees only committed rows) and a worker that consumes every queue
from a Redis no other test run shares.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from bench.infra import free_port
from bench.infra import wait_until as poll_until
from config.celery import app as celery_app

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / "var" / "test-logs"
# Where the worker's mail goes (Django's file backend: one file per message), read by the `worker_mail` fixture.
# The tests' own process keeps Django's in-memory outbox.
WORKER_MAIL_DIR = Path("var") / "test-mail" / str(os.getpid())


# The live server (pytest-django's `live_server`) gets a port chosen now, so that the worker process can
# be told where the site is: the sandbox gateway calls the site's webhook from the worker.
LIVE_SERVER_ADDRESS = os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", f"127.0.0.1:{free_port()}")
settings.SITE_URL = f"http://{LIVE_SERVER_ADDRESS}"


@pytest.fixture(scope="session", autouse=True)
def redis_url():
    """A Redis for this test run alone: TEST_REDIS_URL if given, else a private redis-server on a free port."""
    url = os.environ.get("TEST_REDIS_URL")
    process = None
    if not url:
        server = shutil.which("redis-server")
        if server is None:
            pytest.exit("redis-server is not on the PATH and TEST_REDIS_URL is not set", returncode=2)
        port = free_port()
        process = subprocess.Popen(
            [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        import redis

        client = redis.Redis.from_url(url)
        poll_until(lambda: _pings(client), timeout=10, what="the private redis-server")
    settings.CELERY_BROKER_URL = settings.CELERY_RESULT_BACKEND = settings.REDIS_URL = url
    celery_app.conf.update(broker_url=url, result_backend=url)
    yield url
    if process is not None:
        process.terminate()
        process.wait(timeout=10)


def _pings(client) -> bool:
    try:
        return client.ping()
    except Exception:
        return False


def _database_url(db_settings: dict) -> str:
    host = db_settings.get("HOST") or "127.0.0.1"
    port = db_settings.get("PORT") or 5432
    user = db_settings.get("USER") or "postgres"
    password = f":{db_settings['PASSWORD']}" if db_settings.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{host}:{port}/{db_settings['NAME']}"


class WorkerProcess:
    """A real `celery worker` process on a given broker, sharing the test database."""

    def __init__(self, broker_url: str, name: str):
        db_settings = settings.DATABASES["default"]
        if db_settings["ENGINE"] != "django.db.backends.postgresql":
            pytest.skip("the worker tests need PostgreSQL (DATABASE_URL=postgres://...)")
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / f"{name}-{os.getpid()}.log"
        self.hostname = f"{name}-{os.getpid()}@{socket.gethostname()}"
        self.broker_url = broker_url
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": settings.SETTINGS_MODULE,  # the tests' settings: test-only apps too
            "DATABASE_URL": _database_url(db_settings),
            "CELERY_BROKER_URL": broker_url,
            "CELERY_RESULT_BACKEND": broker_url,
            "REDIS_URL": broker_url,
            "SECRET_KEY": settings.SECRET_KEY,
            "SANDBOX_WEBHOOK_SECRET": settings.SANDBOX_WEBHOOK_SECRET,
            "DATABASE_CONN_MAX_AGE": "0",
            "SITE_URL": settings.SITE_URL,
            # Relative to the worker's directory (ROOT): django-environ reads "filemail:///x" as the path "x".
            "EMAIL_URL": f"filemail:///{WORKER_MAIL_DIR}",
            # Retries and status queries of top-ups in tenths of a second instead of tens.
            "RECHARGE_RETRY_BASE_SECONDS": "0.2",
            "RECHARGE_QUERY_DELAY_SECONDS": "0.3",
        }
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--queues",
            ",".join(queue.name for queue in settings.CELERY_TASK_QUEUES),
            "--concurrency",
            "2",
            "--pool",
            "prefork",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--hostname",
            self.hostname,
        ]
        with open(self.log_path, "a") as log:
            # A session of its own, so that kill() takes the pool children down with the main process.
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_ready(self):
        poll_until(
            lambda: self.process.poll() is not None or celery_app.control.ping(timeout=0.5),
            timeout=60,
            what="the Celery worker to answer a ping",
        )
        if self.process.poll() is not None:
            pytest.fail(f"the Celery worker exited at start:\n{self.log_path.read_text()[-3000:]}")
        return self

    def kill(self):
        """SIGKILL the whole worker, as a crashed machine would: nothing is acknowledged or cleaned up."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self):
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, redis_url):
    """The worker most tests share, bound to the private Redis and to the test database."""
    worker = WorkerProcess(redis_url, "test-worker")
    try:
        yield worker.wait_ready()
    finally:
        worker.stop()


@pytest.fixture
def worker(transactional_db, celery_worker_process):
    """Use in tests that need a real worker: the database is committed for real so the worker sees it."""
    celery_app.control.purge()
    yield celery_worker_process
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
        found = []
        for path in sorted(folder.iterdir(), key=lambda path: path.stat().st_mtime):
            # The file backend appends each message followed by a line of 79 dashes.
            for chunk in path.read_bytes().split(b"\n" + b"-" * 79 + b"\n"):
                if chunk.strip():
                    found.append(email.message_from_bytes(chunk.lstrip(), policy=email.policy.default))
        return found

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
    """Wait until the worker has nothing running or reserved and the queues are empty."""
    import redis

    def idle() -> bool:
        inspect = celery_app.control.inspect(timeout=0.5)
        busy = any((inspect.active() or {}).values()) or any((inspect.reserved() or {}).values())
        client = redis.Redis.from_url(celery_app.conf.broker_url)
        queued = sum(client.llen(queue.name) for queue in settings.CELERY_TASK_QUEUES)
        return not busy and not queued

    def wait(timeout: float = 30):
        wait_until(idle, timeout=timeout, what="the worker to be idle")

    return wait


@pytest.fixture
def carrier_discounts(db):
    """The migration's default discounts, again: a transactional test before this one flushed every table."""
    from decimal import Decimal

    from recharge.models import CarrierDiscount

    for carrier, discount in {"China Mobile": "0.990", "China Unicom": "0.985", "China Telecom": "0.980"}.items():
        CarrierDiscount.objects.update_or_create(carrier=carrier, defaults={"discount": Decimal(discount)})


@pytest.fixture
def placed_batch(user):
    """A batch placed synchronously through the services (no worker): its payment is pending."""

    from decimal import Decimal

    from orders import selectors, services
    from tests.orders.factories import ProductFactory

    def place(prices=("10.00", "20.00", "30.00"), owner=None):
        rows = []
        for index, price in enumerate(prices):
            ProductFactory(sku=f"ITEM-{index}", unit_price=Decimal(price), stock=5)
            rows.append({"kind": "goods", "sku": f"ITEM-{index}"})
        batch = services.batch_submit(owner=owner or user, rows=rows).batch
        for row_index in range(len(rows)):
            services.order_place(batch_id=batch.pk, row_index=row_index)
        services.batch_finalize(batch_id=batch.pk, results=selectors.batch_results_from_database(batch))
        batch.refresh_from_db()
        return batch

    return place
