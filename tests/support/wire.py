"""What a process sends to PostgreSQL, counted on the wire, and the database settings a worker process runs with:
for the benchmark's count of a placed row's round trips and for the tests that hold it to that count."""

from __future__ import annotations

import re
import tempfile
from contextlib import contextmanager

from django.conf import settings
from django.db import connection

from config.celery import skip_connection_health_checks


@contextmanager
def as_in_a_worker():
    """This process's database settings as a worker's are (config/celery.py, on worker_init), restored after."""
    kept = {alias: database.get("CONN_HEALTH_CHECKS") for alias, database in settings.DATABASES.items()}
    skip_connection_health_checks()
    try:
        yield
    finally:
        for alias, value in kept.items():
            settings.DATABASES[alias]["CONN_HEALTH_CHECKS"] = value
        connection.close()


# A libpq trace line: its time, F(rontend) or B(ackend), the message's length and type, then its contents.
_TRACE_MESSAGE = re.compile(r"^\S+ \S+\t([FB])\t\d+\t(\w+)\t?(.*)$")


@contextmanager
def traced(database_connection):
    """The SQL a block sends on `database_connection`, one entry per round trip (a simple Query, or an extended
    query up to its Sync), read from libpq's own trace of the connection's messages."""
    sent: list[str] = []
    with tempfile.TemporaryFile() as trace:
        pgconn = database_connection.connection.pgconn
        pgconn.trace(trace.fileno())
        try:
            yield sent
        finally:
            pgconn.untrace()  # flushes the trace
        trace.seek(0)
        messages: list[tuple[str, str, str]] = []
        for line in trace.read().decode(errors="replace").splitlines():
            found = _TRACE_MESSAGE.match(line)
            if found:
                messages.append((found.group(1), found.group(2), found.group(3)))
            elif messages:  # a statement's text spans lines
                direction, kind, text = messages[-1]
                messages[-1] = (direction, kind, f"{text}\n{line}")
    for direction, kind, text in messages:
        if direction != "F":
            continue
        if kind == "Query":  # "<sql>"
            sent.append(text.strip()[1:-1])
        elif kind == "Parse":  # "<statement name>" "<sql>" <parameter types>
            sent.append(re.sub(r'^\s*"[^"]*" "', "", text.rsplit('"', 1)[0]))
