"""The services a test run or a benchmark run starts for itself: a private redis-server, a RabbitMQ virtual
host, real `celery worker` and `celery beat` processes and the site under gunicorn. Each is created by its
owner and removed by it; nothing it did not create is touched.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from celery.utils.nodenames import host_format

from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
AMQP_SCHEMES = ("amqp://", "amqps://", "pyamqp://")


class ServiceError(Exception):
    """A service could not be started; the message says why, in one line."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Broker:
    """Where tasks go (`url`: a Redis, or a RabbitMQ virtual host) and where their results are kept
    (`result_backend`: always a Redis, since chords count their results there)."""

    url: str
    result_backend: str

    @property
    def kind(self) -> str:
        return "rabbitmq" if self.url.startswith(AMQP_SCHEMES) else "redis"

    def environment(self) -> dict[str, str]:
        """The variables that point the project's settings at this broker (REDIS_URL: the cache too)."""
        return {
            "CELERY_BROKER_URL": self.url,
            "CELERY_RESULT_BACKEND": self.result_backend,
            "REDIS_URL": self.result_backend,
        }


class PrivateRedis:
    """A redis-server of our own on a free port, so that its queues, results and command counts are
    ours alone: no other test run, benchmark or worker consumes from it.

    Given a `url`, that Redis is used instead and nothing is started (it must be one that nothing else
    uses: the workers started on it consume every queue).
    """

    def __init__(self, url: str | None = None, *, port: int | None = None):
        self.url = url or ""
        self.port = port
        self.process: subprocess.Popen | None = None

    def start(self) -> str:
        if self.url:
            return self.url
        server = shutil.which("redis-server")
        if server is None:
            raise ServiceError("redis-server is not on the PATH (apt-get install redis-server)")
        port = self.port = self.port or free_port()
        self.process = subprocess.Popen(
            [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        self.url = f"redis://127.0.0.1:{port}/0"
        wait_until(self._answers, timeout=10, what=f"the private redis-server on port {port}")
        return self.url

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL the server, as a crash would: its queues are gone (it keeps nothing on disk)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> PrivateRedis:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _answers(self) -> bool:
        import redis

        try:
            return redis.Redis.from_url(self.url, socket_connect_timeout=1).ping()
        except redis.RedisError:
            return False


class RabbitVhost:
    """A RabbitMQ virtual host of our own on the server that `url` names: its queues, exchanges (the workers'
    control exchange included) and messages are ours alone, so that parallel runs never consume each other's
    tasks, and deleting it at the end removes everything they left.

    The virtual host is `url`'s, or `default_name` when `url` names none (or "/"); it must not exist yet, since
    stop() deletes it. It is created with `rabbitmqctl` where that works (root or the rabbitmq user, on the
    broker's own machine), else through the management plugin's HTTP API on port 15672 with `url`'s user.
    """

    def __init__(self, url: str, *, default_name: str, management_url: str | None = None):
        parts = urlsplit(url)
        if not url.startswith(AMQP_SCHEMES) or not parts.hostname:
            raise ServiceError(f"not a RabbitMQ URL: {url!r} (amqp://user:password@host:5672/vhost)")
        named = unquote(parts.path[1:])
        self.name = named if named and named != "/" else default_name
        self.user = unquote(parts.username or "guest")
        self.password = unquote(parts.password or "guest")
        self.host = parts.hostname
        self.url = urlunsplit(parts._replace(path="/" + quote(self.name, safe="")))
        self.management_url = management_url or f"http://{self.host}:15672"
        self._admin: _RabbitAdmin | None = None
        self._created = False

    def start(self) -> str:
        self._admin, exists = self._admin_and_existence()
        if exists:
            raise ServiceError(
                f"the RabbitMQ virtual host {self.name!r} exists already; name one that may be created and deleted"
            )
        self._admin.create_vhost(self.name, user=self.user)
        self._created = True
        return self.url

    def stop(self) -> None:
        if self._created and self._admin is not None:
            self._admin.delete_vhost(self.name)
            self._created = False

    def exists(self) -> bool:
        return self._admin_and_existence()[1]

    def __enter__(self) -> RabbitVhost:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _admin_and_existence(self) -> tuple[_RabbitAdmin, bool]:
        """The first way of administering the broker that answers, and whether our virtual host exists."""
        admins: list[_RabbitAdmin] = []
        reasons = []
        if shutil.which("rabbitmqctl") is None:
            reasons.append("rabbitmqctl is not on the PATH")
        elif not _is_loopback(self.host):
            reasons.append(f"rabbitmqctl reaches only a broker on this machine, not {self.host}")
        else:
            admins.append(_Rabbitmqctl())
        admins.append(_ManagementApi(self.management_url, user=self.user, password=self.password))
        for admin in admins:
            try:
                return admin, admin.vhost_exists(self.name)
            except ServiceError as error:
                reasons.append(str(error))
        raise ServiceError("cannot create a RabbitMQ virtual host: " + "; ".join(reasons))


class _RabbitAdmin:
    def vhost_exists(self, name: str) -> bool:
        raise NotImplementedError

    def create_vhost(self, name: str, *, user: str) -> None:
        raise NotImplementedError

    def delete_vhost(self, name: str) -> None:
        raise NotImplementedError


class _Rabbitmqctl(_RabbitAdmin):
    """The broker's own command line tool: works as root or as the rabbitmq user (it needs the Erlang cookie)."""

    def vhost_exists(self, name: str) -> bool:
        return name in _run(["rabbitmqctl", "-q", "list_vhosts", "name", "--no-table-headers"]).splitlines()

    def create_vhost(self, name: str, *, user: str) -> None:
        _run(["rabbitmqctl", "-q", "add_vhost", name])
        _run(["rabbitmqctl", "-q", "set_permissions", "-p", name, user, ".*", ".*", ".*"])

    def delete_vhost(self, name: str) -> None:
        _run(["rabbitmqctl", "-q", "delete_vhost", name])


class _ManagementApi(_RabbitAdmin):
    """The management plugin's HTTP API (`rabbitmq-plugins enable rabbitmq_management`), as the URL's user, who
    must be an administrator (guest is, from this machine)."""

    def __init__(self, base_url: str, *, user: str, password: str):
        self.base_url = base_url.rstrip("/")
        self.authorization = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def vhost_exists(self, name: str) -> bool:
        try:
            self._request("GET", f"/api/vhosts/{quote(name, safe='')}")
        except _NotFound:
            return False
        return True

    def create_vhost(self, name: str, *, user: str) -> None:
        self._request("PUT", f"/api/vhosts/{quote(name, safe='')}", {})
        permissions = {"configure": ".*", "write": ".*", "read": ".*"}
        self._request("PUT", f"/api/permissions/{quote(name, safe='')}/{quote(user, safe='')}", permissions)

    def delete_vhost(self, name: str) -> None:
        self._request("DELETE", f"/api/vhosts/{quote(name, safe='')}")

    def _request(self, method: str, path: str, body: dict | None = None) -> None:
        request = urllib.request.Request(
            self.base_url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": self.authorization, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10):
                return
        except urllib.error.HTTPError as error:
            if error.code == 404:
                raise _NotFound(path) from None
            raise ServiceError(f"the RabbitMQ management API answered {method} {path} with {error.code}") from None
        except OSError as error:
            raise ServiceError(f"the RabbitMQ management API at {self.base_url} does not answer ({error})") from None


class _NotFound(ServiceError):
    pass


def _run(command: list[str]) -> str:
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ServiceError(f"{' '.join(command[:3])}: {error}") from None
    if completed.returncode != 0:
        output = completed.stderr.strip() or completed.stdout.strip() or f"exit status {completed.returncode}"
        raise ServiceError(f"{' '.join(command[:3])} failed: {output.splitlines()[0]}")
    return completed.stdout


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WorkerProcess:
    """One real `celery -A config worker` process with `concurrency` prefork children.

    It runs in a session of its own, so that kill() and stop() take the pool children down with the
    main process. Readiness is read from its log: the worker logs "<hostname> ready." once it consumes.
    """

    def __init__(
        self,
        *,
        environment: Mapping[str, str],
        queues: Iterable[str],
        log_path: Path,
        hostname: str,
        concurrency: int = 2,
        include: Iterable[str] = (),
        options: Iterable[str] = (),
    ):
        self.environment = dict(environment)
        self.queues = list(queues)
        self.log_path = Path(log_path)
        # Expanded here (%h is this machine's name), so that remote control can address the worker by it.
        self.hostname = host_format(hostname)
        self.concurrency = concurrency
        self.include = list(include)
        self.options = list(options)
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "celery", "-A", "config", "worker"]
        command += ["--queues", ",".join(self.queues), "--concurrency", str(self.concurrency)]
        command += ["--loglevel", "INFO", "--hostname", self.hostname]
        if self.include:
            command += ["--include", ",".join(self.include)]
        return command + self.options

    def start(self) -> WorkerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=ROOT,
                env=self.environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def wait_ready(self, timeout: float = 90) -> WorkerProcess:
        wait_until(
            lambda: not self.is_running() or " ready." in self.log_text(),
            timeout=timeout,
            what=f"the Celery worker {self.hostname} to be ready (log {self.log_path})",
        )
        if not self.is_running():
            raise ServiceError(f"the Celery worker exited at start (log {self.log_path}):\n{self.log_text()[-3000:]}")
        wait_until(lambda: len(self.children()) >= self.concurrency, timeout=30, what="the worker's pool processes")
        return self

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole worker, as a machine that dies would: nothing is acknowledged or cleaned up."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):  # it died already
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float = 30) -> None:
        """Warm shutdown (the children finish what they hold); SIGKILL if that takes longer than `timeout`."""
        if self.process is None or not self.is_running():
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def children(self) -> list[int]:
        """The pool processes' ids."""
        if self.process is None:
            return []
        return [pid for pid, parent in _process_parents() if parent == self.process.pid]

    def pids(self) -> list[int]:
        if self.process is None:
            return []
        return [self.process.pid, *self.children()]


class BeatProcess:
    """One real `celery -A config beat` process, with a schedule file of its own."""

    def __init__(self, *, environment: Mapping[str, str], log_path: Path, schedule_path: Path):
        self.environment = dict(environment)
        self.log_path = Path(log_path)
        self.schedule_path = Path(schedule_path)
        self.process: subprocess.Popen | None = None

    def start(self) -> BeatProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.schedule_path.unlink(missing_ok=True)
        command = [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO"]
        command += ["--schedule", str(self.schedule_path)]
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def stop(self, timeout: float = 10) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


# What the site needs to serve plain HTTP on the loopback with no TLS proxy in front: no redirect to HTTPS,
# cookies without the Secure flag (a client would not send them back over HTTP, and the gateway's Pay form
# needs its CSRF cookie).
PLAIN_HTTP_ON_LOOPBACK = {
    "DEBUG": "0",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "SECURE_SSL_REDIRECT": "0",
    "SESSION_COOKIE_SECURE": "0",
    "CSRF_COOKIE_SECURE": "0",
    "SECURE_HSTS_SECONDS": "0",
}


class WebProcess:
    """The site as production serves it — gunicorn, DEBUG off — on a loopback port, in plain HTTP.

    `environment` says which database, Redis and secrets it uses. The port (a free one unless given) is
    known before anything starts, so that a worker can be told where the site is (SITE_URL).
    """

    def __init__(self, *, environment: Mapping[str, str], log_path: Path, workers: int = 1, port: int | None = None):
        self.environment = {**environment, **PLAIN_HTTP_ON_LOOPBACK}
        self.log_path = Path(log_path)
        self.workers = workers
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> WebProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{self.port}"]
        command += ["--workers", str(self.workers), "--access-logfile", "-"]
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def wait_ready(self, timeout: float = 60) -> WebProcess:
        import urllib.request

        def answers() -> bool:
            if not self.is_running():
                return True
            try:
                with urllib.request.urlopen(f"{self.url}/api/schema/", timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_until(answers, timeout=timeout, what=f"gunicorn on {self.url} (log {self.log_path})")
        if not self.is_running():
            raise ServiceError(f"gunicorn exited at start (log {self.log_path}):\n{self.log_text()[-3000:]}")
        return self

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def pids(self) -> list[int]:
        """The master's and its workers' ids."""
        if self.process is None:
            return []
        return [self.process.pid, *(pid for pid, parent in _process_parents() if parent == self.process.pid)]

    def stop(self, timeout: float = 20) -> None:
        if not self.is_running():
            return
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def _process_parents():
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: the fields we want follow the last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        yield int(entry.name), int(fields[1])
