"""The benchmark's output: medians with min and max, two tables, the targets, and the JSON document."""

from __future__ import annotations

import os
import platform
import statistics
from importlib.metadata import version

# Every figure measured for each batch size: JSON key, column title, table ("time" or "cost").
FIGURES = [
    ("accept_s", "accept s", "time"),
    ("place_s", "place s", "time"),
    ("rows_per_s", "rows/s", "time"),
    ("floor_s", "floor s", "time"),
    ("place_over_floor", "place/floor", "time"),
    ("baseline_s", "baseline s", "time"),
    ("baseline_over_batch", "baseline/batch", "time"),
    ("pg_connections_per_row", "PG conn/row", "cost"),
    ("redis_commands_per_row", "Redis cmd/row", "cost"),
    ("floor_redis_commands_per_row", "floor Redis cmd/row", "cost"),
    ("worker_peak_rss_mb", "worker peak RSS MB", "cost"),
    ("worker_cpu_ms_per_row", "worker CPU ms/row", "cost"),
    ("floor_worker_cpu_ms_per_row", "floor worker CPU ms/row", "cost"),
    ("servers_cpu_ms_per_row", "broker+results CPU ms/row", "cost"),
    ("floor_servers_cpu_ms_per_row", "floor broker+results CPU ms/row", "cost"),
    ("database_cpu_ms_per_row", "PostgreSQL CPU ms/row", "cost"),
    ("client_cpu_ms_per_row", "client CPU ms/row", "cost"),
    ("cpu_busy_pct", "cores busy %", "cost"),
    ("floor_cpu_busy_pct", "floor cores busy %", "cost"),
    ("callback_worker_s", "callback s (worker)", "cost"),
    ("callback_replay_s", "callback s (replay)", "cost"),
    ("callback_replay_peak_mb", "callback peak MB", "cost"),
    ("callback_sql_statements", "callback SQL", "cost"),
    ("callback_payload_kb", "results KB", "cost"),
]
FIGURE_KEYS = [key for key, _, _ in FIGURES]
# Figures that are legitimately zero in a shop that improves: workers that keep their database connection.
MAY_BE_ZERO = {"pg_connections_per_row"}
# The many-shoppers figures: JSON key, column title.
MANY_SHOPPERS_FIGURES = [
    ("many_shoppers_accept_s", "all accepted s"),
    ("many_shoppers_s", "all paid s"),
    ("many_shoppers_floor_s", "floor s"),
    ("many_shoppers_over_floor", "paid/floor"),
]


def summarise(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def size_summary(row_count: int, runs: list[dict]) -> dict:
    last = runs[-1]
    summary = {
        "figures": {key: summarise([run[key] for run in runs]) for key in FIGURE_KEYS if key in last},
        "baseline_checkouts": last["baseline_checkouts"],
        "baseline_extrapolated": last["baseline_checkouts"] < row_count,
    }
    if "redis_commands_by_name" in last:
        # Which Redis commands placing costs, per row (last run): where to look to cut them.
        summary["redis_commands_by_name_per_row"] = {
            name: round(calls, 3) for name, calls in last["redis_commands_by_name"].items()
        }
    return summary


def many_shoppers_summary(runs: list[dict], *, shoppers: int, rows_per_batch: int) -> dict:
    return {
        "shoppers": shoppers,
        "rows_per_batch": rows_per_batch,
        "floor": f"{shoppers} chords of {rows_per_batch} no-op tasks, dispatched at once",
        "figures": {key: summarise([run[key] for run in runs]) for key, _ in MANY_SHOPPERS_FIGURES},
    }


# -- targets (the issue's, for a 2-core machine, on medians) ---------------------------------------------


LINEAR_NOISE_ALLOWANCE = 1.1


def targets(sizes: dict[int, dict], worker_idle_rss_mb: float) -> list[dict]:
    def median(row_count, key):
        return sizes[row_count]["figures"][key]["median"]

    checks = []

    def check(name, value, limit, met):
        checks.append({"target": name, "value": round(value, 3), "limit": limit, "met": bool(met)})

    if 5000 in sizes:
        check("accept 5,000 rows ≤ 0.5 s", median(5000, "accept_s"), 0.5, median(5000, "accept_s") <= 0.5)
    if 5000 in sizes:
        check("place 5,000 rows ≤ 12 s", median(5000, "place_s"), 12.0, median(5000, "place_s") <= 12.0)
    if 1000 in sizes:
        check(
            "place/floor ≤ 2.0 at 1,000 rows",
            median(1000, "place_over_floor"),
            2.0,
            median(1000, "place_over_floor") <= 2.0,
        )
        check(
            "baseline/batch ≥ 10 at 1,000 rows",
            median(1000, "baseline_over_batch"),
            10.0,
            median(1000, "baseline_over_batch") >= 10.0,
        )
    if 1000 in sizes and 5000 in sizes:
        # "At most linearly": 5 times the rows may cost 5 times as much, plus 10% for run-to-run noise
        # (a cost that is exactly linear measures 4.9× one time and 5.1× the next).
        limit = 5.0 * LINEAR_NOISE_ALLOWANCE
        for key, name in [("callback_worker_s", "callback time"), ("callback_replay_peak_mb", "callback memory")]:
            growth = median(5000, key) / median(1000, key)
            check(f"{name} 1,000→5,000 rows grows ≤ 5× (+10%)", growth, limit, growth <= limit)
        # Worker memory: what a batch adds on top of an idle worker process.
        added = [max(median(n, "worker_peak_rss_mb") - worker_idle_rss_mb, 0.1) for n in (1000, 5000)]
        growth = added[1] / added[0]
        check("worker memory added 1,000→5,000 rows grows ≤ 5× (+10%)", growth, limit, growth <= limit)
    return checks


# -- the machine -------------------------------------------------------------------------------------------


def machine(*, postgres_version: str, redis_version: str, rabbitmq_version: str | None = None) -> dict:
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": _cpu_model(),
        "memory_gib": round(_meminfo_kb("MemTotal") / 2**20, 1),
        "postgresql": postgres_version,
        "redis": redis_version,
        "rabbitmq": rabbitmq_version,
        "python": platform.python_version(),
        "django": version("django"),
        "celery": version("celery"),
        "load_average_at_start": [round(load, 2) for load in os.getloadavg()],
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _meminfo_kb(field: str) -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


# -- text ----------------------------------------------------------------------------------------------------


def render(document: dict) -> str:
    sizes = {int(n): size for n, size in document["sizes"].items()}
    settings = document["settings"]
    lines = [
        f"Batchpay placing benchmark — {document['command']}",
        _machine_line(document["machine"]),
        _code_line(document["code"]),
        _broker_line(settings),
        f"{settings['workers']} worker processes; median (min–max) of {settings['repeat']} runs per size.",
        "",
        _table(sizes, "time"),
        "",
        _table(sizes, "cost"),
        "",
    ]
    shoppers = document["many_shoppers"]
    lines += [
        f"Many shoppers: {shoppers['shoppers']} API users POST a {shoppers['rows_per_batch']}-row batch each at the "
        "same moment; all paid = from the first POST until every merged payment exists; "
        f"floor = {shoppers['floor']}.",
        _many_shoppers_table(shoppers),
        "",
    ]
    extrapolated = [
        f"{n:,} from {size['baseline_checkouts']:,}" for n, size in sizes.items() if size["baseline_extrapolated"]
    ]
    if extrapolated:
        lines.append(
            "* baseline extrapolated linearly from sequential checkouts actually run: " + ", ".join(extrapolated) + "."
        )
    sql = document["placing_sql"]
    lines += [
        f"Placing one row: {sql['sql_statements_per_row']:.2f} SQL round trips, "
        f"of which {sql['data_statements_per_row']:.2f} read or write data and the rest is transaction control "
        "or preparing a statement (counted on the wire, libpq's trace, over "
        f"{sql['rows']} rows each run as the place_row task with a worker's settings), e.g.",
        "  " + "; ".join(sql["example_row"]),
        f"Idle worker process RSS after warm-up: {document['worker_idle_rss_mb']:.1f} MB.",
        "",
        "Targets:",
    ]
    for check in document["targets"]:
        lines.append(f"  [{'met ' if check['met'] else 'MISS'}] {check['target']}: {_number(check['value'])}")
    if not document["targets"]:
        lines.append("  (none apply to these sizes: they are stated for 1,000 and 5,000 rows)")
    return "\n".join(lines)


def _machine_line(info: dict) -> str:
    rabbitmq = f"RabbitMQ {info['rabbitmq']}, " if info.get("rabbitmq") else ""
    return (
        f"{info['nproc']} CPUs ({info['cpu']}), {info['memory_gib']} GiB, PostgreSQL {info['postgresql']}, "
        f"{rabbitmq}Redis {info['redis']}, Python {info['python']}, Django {info['django']}, Celery {info['celery']}; "
        f"load average at start {', '.join(map(str, info['load_average_at_start']))}"
    )


def _broker_line(settings: dict) -> str:
    if settings["broker"] == "rabbitmq":
        return (
            f"Broker: RabbitMQ ({settings['broker_url']}, a virtual host of the benchmark's own); results in a "
            "private Redis. Redis command counts are left out: they would count the results alone."
        )
    return "Broker: a private Redis, which keeps the results too."


def _many_shoppers_table(shoppers: dict) -> str:
    header = ["batches × rows", *[title for _, title in MANY_SHOPPERS_FIGURES]]
    cells = [f"{shoppers['shoppers']} × {shoppers['rows_per_batch']}"]
    cells += [_cell(shoppers["figures"][key]) for key, _ in MANY_SHOPPERS_FIGURES]
    return _render_table(header, [cells])


def _code_line(code: dict) -> str:
    changed = f" + {len(code['uncommitted'])} uncommitted changes" if code["uncommitted"] else ""
    return f"Code: commit {code['commit'] or 'unknown'}{changed}"


def _table(sizes: dict[int, dict], table: str) -> str:
    measured = next(iter(sizes.values()))["figures"]
    columns = [(key, title) for key, title, kind in FIGURES if kind == table and key in measured]
    header = ["rows", *[title for _, title in columns]]
    body = []
    for row_count, size in sizes.items():
        cells = [f"{row_count:,}"]
        for key, _ in columns:
            cell = _cell(size["figures"][key])
            if key in ("baseline_s", "baseline_over_batch") and size["baseline_extrapolated"]:
                cell += " *"
            cells.append(cell)
        body.append(cells)
    return _render_table(header, body)


def _render_table(header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells):
        return "| " + " | ".join(cell.rjust(width) for cell, width in zip(cells, widths, strict=True)) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (width + 2) for width in widths) + "|", *map(line, body)])


def _cell(summary: dict) -> str:
    if len(summary["runs"]) == 1:
        return _number(summary["median"])
    return f"{_number(summary['median'])} ({_number(summary['min'])}–{_number(summary['max'])})"


def _number(value: float) -> str:
    """Three significant digits, without scientific notation."""
    if value == 0:
        return "0"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}" if value >= 0.01 else f"{value:.4f}"
