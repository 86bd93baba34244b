"""The load run's figures, from what the clients recorded, and the text `python -m bench.load` prints.

"Within the run" means started (a request) or seen (a payment, a paid batch) before the duration ended:
the rates and the "within the run" counts. Batches still in flight then are followed to the end; their
requests count in the request times and the answers, and their journeys in the journey times and totals.
"""

from __future__ import annotations

import os
import re
import statistics
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from bench.load_clients import EXPECTED_STATUS, Answer, Journey

PERCENTILES = (50, 95, 99)
# Request kinds in the order of a journey, with what each one is.
KINDS = {
    "submit": "POST /api/v1/batches/",
    "poll": "GET /api/v1/batches/{id}/",
    "pay page": "GET the pay URL (the ways to pay)",
    "pay": "POST the sandbox as the way to pay (302 to it)",
    "gateway page": "GET the sandbox gateway's page",
    "gateway pay": "POST Pay on it (302 back)",
}


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else ordered * 99
    return {**{f"p{p}": round(cuts[p - 1], 4) for p in PERCENTILES}, "max": round(ordered[-1], 4)}


def figures(*, answers: list[Answer], journeys: list[Journey], started: float, end: float) -> dict[str, Any]:
    duration = end - started
    in_run = [answer for answer in answers if answer.started < end]

    def requests(selected: list[Answer], everything: list[Answer]) -> dict[str, Any]:
        # The rate counts the requests started within the run; the times and the statuses are of every
        # request, those following the batches in flight included (a 5xx then counts as much).
        return {
            "count": len(selected),
            "per_s": round(len(selected) / duration, 2),
            "seconds": percentiles([answer.seconds for answer in everything]),
            "statuses": dict(sorted(Counter(answer.status for answer in everything).items())),
        }

    by_kind = {
        kind: requests([a for a in in_run if a.kind == kind], [a for a in answers if a.kind == kind]) for kind in KINDS
    }
    submitted = [journey for journey in journeys if journey.batch_id]
    # (when it was submitted, when the client saw it happen) of each batch that got so far
    payment_seen = [(j.submitted, j.payment_seen) for j in submitted if j.payment_seen is not None]
    paid_seen = [(j.submitted, j.paid_seen) for j in submitted if j.paid_seen is not None]
    return {
        "duration_s": round(duration, 2),
        "requests": {"all": requests(in_run, answers), **by_kind},
        "batches": {
            "submitted_in_run": sum(journey.submitted < end for journey in submitted),
            "reached_payment_in_run": sum(seen <= end for _, seen in payment_seen),
            "paid_in_run": sum(seen <= end for _, seen in paid_seen),
            "submitted": len(submitted),
            "paid": len(paid_seen),
            "outcomes": dict(Counter(_outcome(journey) for journey in journeys)),
        },
        "submission_to_payment_s": percentiles([seen - submitted for submitted, seen in payment_seen]),
        "submission_to_paid_s": percentiles([seen - submitted for submitted, seen in paid_seen]),
        "answers_5xx": sum(answer.status >= 500 for answer in answers),
        "no_answer": sum(answer.status == 0 for answer in answers),
        "non_2xx_by_status": dict(sorted(Counter(a.status for a in answers if not 200 <= a.status < 300).items())),
        "unexpected_answers": sum(answer.status != EXPECTED_STATUS[answer.kind] for answer in answers),
        "first_unexpected": next((j.outcome for j in journeys if _outcome(j) == "unexpected answer"), ""),
    }


def _outcome(journey: Journey) -> str:
    return journey.outcome if journey.outcome in ("paid", "failed", "unfinished") else "unexpected answer"


def failures(document: dict[str, Any]) -> list[str]:
    """Why the run fails, if it does: every one of these is a bug in the shop (or in this script)."""
    found = []
    if document["answers_5xx"]:
        found.append(f"{document['answers_5xx']} answers 5xx")
    if document["no_answer"]:
        found.append(f"{document['no_answer']} requests without an answer")
    if document["unexpected_answers"]:
        found.append(f"{document['unexpected_answers']} answers the flow does not expect")
    outcomes = document["batches"]["outcomes"]
    found += [f"{outcomes[outcome]} batches {outcome}" for outcome in ("failed", "unfinished") if outcomes.get(outcome)]
    if document["checker"]["exit_status"] != 0:
        found.append("the invariant checker found violations")
    return found


# -- the worker's time --------------------------------------------------------------------------------------

# Celery logs the run time of the tasks that succeed only (a retry or a failure is logged without it).
TASK_DONE = re.compile(r"Task ([\w.]+)\[[^\]]+\] succeeded in ([0-9.eE+-]+)s")


def worker_tasks(log: str, *, seconds: float, concurrency: int) -> dict[str, Any]:
    """What the worker's pool spent its time on, from its log over the run (`Task <name>[<id>] succeeded in
    <seconds>s`): per task, how many succeeded and their pool seconds (wall time in a pool process, waits
    for the database, the broker, HTTP and the CPU included); and the share of the pool's time so spent."""
    tasks: dict[str, dict[str, float]] = {}
    for name, task_seconds in TASK_DONE.findall(log):
        task = tasks.setdefault(name, {"count": 0, "pool_s": 0.0})
        task["count"] += 1
        task["pool_s"] += float(task_seconds)
    ranked = sorted(tasks.items(), key=lambda item: -item[1]["pool_s"])
    return {
        "tasks": {name: {"count": int(t["count"]), "pool_s": round(t["pool_s"], 2)} for name, t in ranked},
        "pool_busy": round(sum(t["pool_s"] for t in tasks.values()) / (seconds * concurrency), 3),
    }


# -- CPU ----------------------------------------------------------------------------------------------------


class CpuMeter(threading.Thread):
    """What each part of the shop got of the CPUs over the run, in cores (seconds per second of the run): time
    on a CPU, and time ready to run but waiting for a CPU (every thread's /proc/<pid>/task/*/schedstat) — on
    a shared machine the second says how much the others' work slowed this run. And the machine's busy time
    (every process on it). Sampled every second, so that a process that ends within the run (a database
    connection closed after its maximum age) is counted up to its last sample."""

    def __init__(self, *, web: Any, worker: Any, beat: Any, redis_pid: int):
        super().__init__(name="cpu-meter", daemon=True)
        self.parts = {
            "gunicorn": web.pids,
            "celery worker": worker.pids,
            "celery beat": lambda: [beat.process.pid],
            "redis": lambda: [redis_pid],
            # The backends serving the run's database.
            "postgresql": _backend_pids,
            "load clients": lambda: [os.getpid()],
        }
        self._first: dict[str, dict[int, tuple[float, float]]] = {}
        self._last: dict[str, dict[int, tuple[float, float]]] = {part: {} for part in self.parts}
        self._stopping = threading.Event()
        self._machine_first = 0.0

    def start(self) -> None:
        self._first = self._sample()
        self._machine_first = _machine_busy()
        super().start()

    def run(self) -> None:
        # Its own database connection (Django's are per thread), closed when it stops.
        from django.db import connection

        try:
            while not self._stopping.wait(1.0):
                self._sample()
        finally:
            connection.close()

    def stop(self, *, seconds: float) -> dict[str, Any]:
        self._stopping.set()
        self.join()
        self._sample()
        used: dict[str, Any] = {"on_cpu": {}, "waiting_for_cpu": {}}
        for part, pids in self._last.items():
            # A process first seen after the start began within the run: all of its time counts.
            first = self._first[part]
            for index, figure in enumerate(("on_cpu", "waiting_for_cpu")):
                total = sum(times[index] - first.get(pid, (0.0, 0.0))[index] for pid, times in pids.items())
                used[figure][part] = round(total / seconds, 2)
        used["machine_busy"] = round((_machine_busy() - self._machine_first) / seconds, 2)
        return used

    def _sample(self) -> dict[str, dict[int, tuple[float, float]]]:
        sample: dict[str, dict[int, tuple[float, float]]] = {}
        for part, pids in self.parts.items():
            times = {pid: _scheduled(pid) for pid in pids()}
            sample[part] = {pid: scheduled for pid, scheduled in times.items() if scheduled is not None}
            self._last[part].update(sample[part])
        return sample


def _scheduled(pid: int) -> tuple[float, float] | None:
    """Seconds a process's threads have run, and have waited to run (schedstat: run ns, wait ns, slices);
    None if the process has ended."""
    ran = waited = 0
    threads = 0
    for thread in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            run_ns, wait_ns, _ = thread.read_text().split()
        except (OSError, ValueError):
            continue  # the thread ended meanwhile
        ran, waited, threads = ran + int(run_ns), waited + int(wait_ns), threads + 1
    return (ran / 1e9, waited / 1e9) if threads else None


def _machine_busy() -> float:
    with open("/proc/stat") as stat:
        ticks = [int(value) for value in stat.readline().split()[1:]]
    idle, iowait = ticks[3], ticks[4]
    return (sum(ticks[:8]) - idle - iowait) / os.sysconf("SC_CLK_TCK")


def _backend_pids() -> list[int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [pid for (pid,) in cursor.fetchall()]


# -- text ---------------------------------------------------------------------------------------------------


def render(document: dict[str, Any]) -> str:
    settings, batches = document["settings"], document["batches"]
    machine = document["machine"]
    lines = [
        f"Batchpay load — {document['command']}",
        f"{machine['nproc']} CPUs ({machine['cpu']}), {machine['memory_gib']} GiB, PostgreSQL {machine['postgresql']}, "
        f"Redis {machine['redis']}, Python {machine['python']}, Django {machine['django']}, "
        f"Celery {machine['celery']}",
        f"Load average at start {_triple(machine['load_average_at_start'])}, "
        f"at the end of the run {_triple(machine['load_average_at_end'])}",
        f"Code: commit {document['code']['commit'] or 'unknown'}"
        + (f" + {len(document['code']['uncommitted'])} uncommitted changes" if document["code"]["uncommitted"] else ""),
        f"gunicorn {settings['web_workers']} workers (DEBUG=0), 1 Celery worker ({settings['worker_concurrency']} "
        "processes) + beat, PostgreSQL and Redis of the run's own; API throttles lifted.",
        f"{settings['clients']} clients for {settings['duration_s']:g} s, {settings['rows']}-row batches, "
        f"polling every {settings['poll_interval_s']:g} s.",
        "",
        _request_table(document["requests"]),
        "(count, per s: requests started within the run; times, answers: every request, those following the "
        "batches in flight at the end included)",
        "",
        f"Requests/s: {document['requests']['all']['per_s']:g} in all, "
        f"{document['requests']['submit']['per_s']:g} submissions.",
        f"Batches within the run: {batches['submitted_in_run']} submitted, "
        f"{batches['reached_payment_in_run']} reached their payment, {batches['paid_in_run']} paid. "
        f"With those in flight at the end (followed for {document['drain_s']:g} s more): "
        f"{batches['submitted']} submitted, {batches['paid']} paid; outcomes {_counts(batches['outcomes'])}.",
        f"Submission → payment: {_p50_p95(document['submission_to_payment_s'])}; "
        f"submission → paid: {_p50_p95(document['submission_to_paid_s'])} "
        f"(as the clients saw them, to within a poll interval).",
        f"5xx: {document['answers_5xx']}. Non-2xx by status: {_counts(document['non_2xx_by_status']) or 'none'} "
        f"(the pay flow's redirects are 302); unexpected answers: {document['unexpected_answers']}; "
        f"requests without an answer: {document['no_answer']}.",
    ]
    if document["first_unexpected"]:
        lines.append(f"First unexpected answer: {document['first_unexpected']}")
    server, worker, cpu = document["server_s"], document["worker"], document["cpu"]
    lines += [
        f"Server side: placing (batch recorded → placed) {_p50_p95(server['placing'])}; the notification "
        f"(Pay answered → payment paid) {_p50_p95(server['notification'])}.",
        f"Worker pool busy {worker['pool_busy']:.0%} of {settings['worker_concurrency']} processes × "
        f"{settings['duration_s']:g} s; pool seconds by task (count): "
        + ", ".join(f"{name.rsplit('.', 1)[-1]} {t['pool_s']:g} ({t['count']})" for name, t in worker["tasks"].items())
        + ".",
        "CPU over the run, in cores, on a CPU / waiting for one: "
        + ", ".join(f"{part} {cores:g} / {cpu['waiting_for_cpu'][part]:g}" for part, cores in cpu["on_cpu"].items())
        + f"; the machine busy {cpu['machine_busy']:g} of {machine['nproc']} (every process on it).",
        f"Top-ups after the run: {_counts(document['top_ups']) or 'none'}.",
        "",
        f"Invariant checker (manage.py check_invariants, {document['checker']['seconds']:g} s, "
        f"exit status {document['checker']['exit_status']}):",
        *("  " + line for line in document["checker"]["output"].splitlines()),
        "",
        "OK" if document["ok"] else "FAILED: " + "; ".join(document["failures"]),
    ]
    return "\n".join(lines)


def _request_table(requests: dict[str, Any]) -> str:
    header = ["request", "count", "per s", *(f"p{p} s" for p in PERCENTILES), "max s", "answers"]
    body = []
    for kind, figures in requests.items():
        seconds = figures["seconds"]
        name = f"{kind}: {KINDS[kind]}" if kind in KINDS else kind
        cells = [f"{seconds[key]:.3f}" if key in seconds else "–" for key in [*(f"p{p}" for p in PERCENTILES), "max"]]
        body.append([name, str(figures["count"]), f"{figures['per_s']:g}", *cells, _counts(figures["statuses"])])
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = [
            cell.ljust(width) if i in (0, 7) else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (width + 2) for width in widths) + "|", *map(line, body)])


def _counts(counts: dict[Any, int]) -> str:
    return ", ".join(f"{key} × {count}" for key, count in counts.items())


def _p50_p95(figures: dict[str, float]) -> str:
    if not figures:
        return "none"
    return f"p50 {figures['p50']:.2f} s, p95 {figures['p95']:.2f} s"


def _triple(values: list[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in values)
