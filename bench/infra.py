"""The benchmark's own services: a PostgreSQL database, a private Redis, a RabbitMQ virtual host when
RabbitMQ is the broker, and a Celery worker.

The private Redis, the virtual host and the worker process are the test suite's (tests/support/services.py),
so that both start the real stack the same way; what only the benchmark needs — its own database, the
production environment, the worker's memory and logged callback times — is here.

Nothing here imports Django: the environment these services define is what Django is configured from.
Each service is created by the benchmark and removed by it; nothing it did not create is touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tests.support.services import ROOT, Broker, WorkerProcess

LOG_DIR = ROOT / "var" / "bench-logs"
# Where the database goes when DATABASE_URL does not name a PostgreSQL server (e.g. the SQLite default).
DEFAULT_POSTGRES_SERVER = "postgres://postgres@127.0.0.1:5432/postgres"
# The worker command of the README's production shape; only --include is added (the floor's tasks).
WORKER_QUEUES = ["default", "placing", "payments", "fulfilment"]


class BenchError(Exception):
    """The benchmark could not run; the message says why, in one line."""


class BenchDatabase:
    """A database of the benchmark's own, on the PostgreSQL server that DATABASE_URL names.

    The name carries the checkout and the process id, so that the test suite's database, another
    checkout's benchmark and a second run in this checkout are never touched.
    """

    def __init__(self, database_url: str | None):
        server = database_url if database_url and database_url.startswith(("postgres://", "postgresql://")) else None
        parts = urlsplit(server or DEFAULT_POSTGRES_SERVER)
        checkout = hashlib.sha256(str(ROOT).encode()).hexdigest()[:8]
        self.name = f"batchpay_bench_{checkout}_{os.getpid()}"
        self.url = urlunsplit(parts._replace(path=f"/{self.name}"))
        self.server_url = urlunsplit(parts._replace(path="/postgres"))
        self.server = f"{parts.hostname}:{parts.port or 5432}"
        self._created = False

    def create(self) -> None:
        self._execute("CREATE DATABASE {}")
        self._created = True

    def drop(self) -> None:
        if self._created:
            # FORCE: a worker killed mid-task may leave a connection behind for a moment.
            self._execute("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            self._created = False

    def _execute(self, statement: str) -> None:
        import psycopg
        from psycopg import sql

        try:
            with psycopg.connect(self.server_url, autocommit=True, connect_timeout=5) as connection:
                connection.execute(sql.SQL(statement).format(sql.Identifier(self.name)))
        except psycopg.OperationalError as exc:
            raise BenchError(f"PostgreSQL at {self.server}: {str(exc).strip().splitlines()[0]}") from None


def service_environment(*, database_url: str, broker: Broker) -> dict[str, str]:
    """The environment of the benchmark process and of its workers: production settings (DEBUG off,
    so that Django keeps no query log) on the benchmark's own database, broker and Redis."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        # Anything that would point Celery elsewhere, make it eager or change the connection age is dropped.
        if not name.startswith("CELERY_") and name not in {"DATABASE_CONN_MAX_AGE", "LOG_LEVEL", "REDIS_URL"}
    }
    return {
        **inherited,
        # Another settings module may be measured (one that imports config.settings and changes it).
        "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings"),
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "SANDBOX_WEBHOOK_SECRET": secrets.token_urlsafe(32),
        # The Django test client's host name.
        "ALLOWED_HOSTS": "testserver",
        "DATABASE_URL": database_url,
        **broker.environment(),
        # The baseline sends one request per checkout, thousands a minute from one user: the API's
        # per-user and batch-submission throttles would answer 429. The checks themselves still run.
        "API_THROTTLE_USER": "1000000/minute",
        "API_THROTTLE_BATCHES": "1000000/minute",
    }


class BenchWorker(WorkerProcess):
    """One `celery worker` process with `concurrency` prefork children, as the README starts it (only
    --include is added: the floor's tasks), and what the benchmark reads off it: memory and the chord
    callback's own time."""

    FINALIZE_DONE = re.compile(r"Task orders\.tasks\.finalize_batch\[[^\]]+\] succeeded in ([0-9.eE+-]+)s")

    def __init__(self, *, environment: dict[str, str], concurrency: int):
        super().__init__(
            environment=environment,
            queues=WORKER_QUEUES,
            concurrency=concurrency,
            log_path=LOG_DIR / f"worker-{os.getpid()}.log",
            hostname=f"bench-{os.getpid()}@%h",
            include=["bench.tasks"],
        )
        self._log_offset = 0

    # -- memory -------------------------------------------------------------------------------------

    def reset_peak_rss(self) -> None:
        """Start a new peak: writing 5 to clear_refs resets VmHWM to the current resident size."""
        for pid in self.pids():
            with contextlib.suppress(OSError):
                Path(f"/proc/{pid}/clear_refs").write_text("5")

    def peak_rss_kb(self) -> dict[int, int]:
        """Each worker process's peak resident size (VmHWM) since the last reset, in KiB."""
        return {pid: _status_kb(pid, "VmHWM") for pid in self.pids()}

    def rss_kb(self) -> dict[int, int]:
        return {pid: _status_kb(pid, "VmRSS") for pid in self.pids()}

    def cpu_seconds(self) -> float:
        """CPU time the worker's processes have used so far, user and system."""
        return cpu_seconds(self.pids())

    # -- the chord callback's own time, as the worker logs it ---------------------------------------

    def new_callback_times(self) -> list[float]:
        """`finalize_batch ... succeeded in Xs` seconds logged since the previous call."""
        with open(self.log_path, "rb") as log:
            log.seek(self._log_offset)
            text = log.read()
        # Only whole lines: a line still being written is read next time.
        text = text[: text.rfind(b"\n") + 1]
        self._log_offset += len(text)
        return [float(seconds) for seconds in self.FINALIZE_DONE.findall(text.decode(errors="replace"))]


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) the processes have used so far, from /proc/<pid>/stat."""
    ticks = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:  # utime and stime: the 14th and 15th fields of the line, the 12th and 13th here
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (which may contain spaces and parentheses): state, ppid, …"""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()


def server_tree_cpu_seconds(parent_pid: int) -> float:
    """CPU time (user + system) of a server's parent process and of every child it ever had: the living children
    read one by one, the children that exited from the parent's own account of them (cutime, cstime), so that a
    child exiting between two readings loses nothing — as PostgreSQL's backends do when a connection closes."""
    parent = _stat_fields(parent_pid)
    if parent is None:
        return 0.0
    ticks = sum(int(value) for value in parent[11:15])  # utime, stime, cutime, cstime
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            child = _stat_fields(int(entry.name))
            if child is not None and child[1] == str(parent_pid):
                ticks += int(child[11]) + int(child[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def parent_pid(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def local_rabbitmq_pid() -> int | None:
    """The RabbitMQ node's process on this machine (beam.smp running `rabbit`), if there is exactly one."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if command[0].endswith(b"beam.smp") and b"rabbit" in command:
            found.append(int(entry.name))
    return found[0] if len(found) == 1 else None


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
