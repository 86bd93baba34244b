"""Reachability checks shared by /healthz and the start-up preflight.

Each check answers None when the dependency is up, or a one-line reason naming the variable that
points at it, so that an operator knows which setting to look at.
"""

from urllib.parse import urlsplit, urlunsplit

import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config.celery import app as celery_app


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def database_problem() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - a health check reports any failure, whatever the driver raised
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"DATABASE_URL: cannot use the database ({first_line})"
    return None


def broker_problem() -> str | None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return None
    try:
        with celery_app.connection_for_write() as conn:
            # /healthz must say "down" within 2 s: one quick retry, no 2 s pause before it, 1 s in all
            # (each connect also gives up after the transport's 1 s socket_connect_timeout).
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=1)
    except Exception as exc:  # noqa: BLE001 - kombu raises per transport; every one means "cannot reach"
        return f"{settings.CELERY_BROKER_URL_VARIABLE}: cannot reach {_redact(celery_app.conf.broker_url)} ({exc})"
    return None


def results_problem() -> str | None:
    """The result backend, when it is not the broker (RabbitMQ as broker): chords count their results there,
    so without it no batch is ever finalised."""
    url = celery_app.conf.result_backend
    if settings.CELERY_TASK_ALWAYS_EAGER or not url or url == celery_app.conf.broker_url:
        return None
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
    except redis.RedisError as exc:
        return f"{settings.CELERY_RESULT_BACKEND_VARIABLE}: cannot reach {_redact(url)} ({exc})"
    return None


def worker_problem() -> str | None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return None
    try:
        replies = celery_app.control.ping(timeout=1.0)
    except Exception as exc:  # noqa: BLE001 - any failure to ping is reported, not raised
        return f"no worker answered a ping ({exc})"
    return None if replies else "no worker answered a ping"


@never_cache
@require_GET
def healthz(request):
    checks = {"database": database_problem(), "broker": broker_problem()}
    # Only where it is a service of its own: with a Redis broker the broker's check covers it.
    if celery_app.conf.result_backend != celery_app.conf.broker_url:
        checks["results"] = results_problem()
    checks["worker"] = worker_problem() if checks["broker"] is None else "broker is down"
    body = {
        "status": "ok" if not any(checks.values()) else "unavailable",
        "eager": settings.CELERY_TASK_ALWAYS_EAGER,
        "checks": {name: ("up" if problem is None else "down") for name, problem in checks.items()},
        "problems": {name: problem for name, problem in checks.items() if problem},
    }
    return JsonResponse(body, status=200 if body["status"] == "ok" else 503)
