"""`python -m bench.invariants`: how long the invariant checker (orders/invariants.py) takes on a big database.

It makes a database of its own on the PostgreSQL server of DATABASE_URL, migrates it, fills it with SQL
(generate_series, one statement per table) with a consistent shop: batches of every status, their rows,
orders, merged payments and allocations, refunds of orders' shares, late captures refunded whole, top-ups
with their fulfilments and sandbox records, and tracked stock. Then it runs every check a few times, prints
the timings and the slowest checks, and drops the database. Every check must pass on this data: a check that
fires here is a false alarm, and the script exits 1.

    python -m bench.invariants                     # 100,000 orders in batches of 10
    python -m bench.invariants --orders 20000 --rows-per-batch 100 --json figures.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from bench.cli import positive_count
from bench.infra import BenchDatabase, BenchError, service_environment
from tests.support.services import Broker

USERS = 100
PRODUCTS = 20
# Tracked products start with this many units; what the orders hold is taken from it.
STOCK = 1_000_000


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.invariants", description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=positive_count, default=100_000, help="orders to create (default 100,000)")
    parser.add_argument("--rows-per-batch", type=positive_count, default=10, help="orders per batch (default 10)")
    parser.add_argument("--repeat", type=positive_count, default=3, help="full checks to time (default 3)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    database = BenchDatabase(os.environ.get("DATABASE_URL"))
    try:
        database.create()
        # No broker is used: the checker only reads the database.
        nowhere = "redis://127.0.0.1:1/0"
        _configure_django(
            service_environment(database_url=database.url, broker=Broker(url=nowhere, result_backend=nowhere))
        )
        figures = _measure(args)
    except BenchError as error:
        print(f"bench.invariants: {error}", file=sys.stderr)
        return 2
    finally:
        _close_django_connections()
        database.drop()
    print(_render(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0 if figures["ok"] else 1


def _configure_django(environment: dict[str, str]) -> None:
    os.environ.update(environment)
    import django

    django.setup()


def _close_django_connections() -> None:
    if "django.db" in sys.modules:
        from django.db import connections

        connections.close_all()


def _measure(args) -> dict:
    from django.core.management import call_command
    from django.db import connection

    from orders.invariants import invariants_check, registered

    call_command("migrate", interactive=False, verbosity=0)
    started = time.perf_counter()
    fill(orders=args.orders, rows_per_batch=args.rows_per_batch)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    fill_seconds = time.perf_counter() - started

    reports = [invariants_check() for _ in range(args.repeat)]
    per_check = {invariant.name: invariants_check(names=[invariant.name]).seconds for invariant in registered()}
    with connection.cursor() as cursor:
        cursor.execute("SELECT (SELECT COUNT(*) FROM orders_order), (SELECT COUNT(*) FROM orders_batch)")
        orders, batches = cursor.fetchone()
    return {
        "orders": orders,
        "batches": batches,
        "checks": reports[0].checked,
        "fill_seconds": round(fill_seconds, 2),
        "check_seconds": [round(report.seconds, 3) for report in reports],
        "check_seconds_median": round(statistics.median(report.seconds for report in reports), 3),
        "slowest_checks": dict(sorted(per_check.items(), key=lambda item: -item[1])[:5]),
        "ok": all(report.ok for report in reports),
        "violations": [report.summary() for report in reports if not report.ok][:1],
    }


def _render(figures: dict) -> str:
    slowest = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in figures["slowest_checks"].items())
    lines = [
        f"{figures['orders']:,} orders in {figures['batches']:,} batches, made in {figures['fill_seconds']:.1f} s",
        f"all {figures['checks']} checks: median {figures['check_seconds_median']:.2f} s "
        f"(runs: {', '.join(f'{seconds:.2f}' for seconds in figures['check_seconds'])} s)",
        f"slowest checks alone: {slowest}",
    ]
    lines += ["VIOLATIONS on consistent data (a false alarm):", *figures["violations"]] if not figures["ok"] else []
    return "\n".join(lines)


def fill(*, orders: int, rows_per_batch: int) -> None:
    """A consistent shop of `orders` orders, written with one INSERT ... SELECT per table (every `%` in
    FILL is doubled: the statements take named parameters).

    Batch b has status paid (6 in 10), awaiting payment (2 in 10), expired or cancelled; 3 orders in 10
    are mobile top-ups, the rest goods, half of them of tracked stock. Each payment has one attempt. In paid
    batches one order in 97 was refunded (a top-up that failed for good, or goods given back by staff); one
    expired batch in 2 was paid at the gateway too late and its attempt refunded whole. Every third batch of
    ten has a row that failed. Status audit rows are left out: no check reads them.
    """
    from django.db import connection, transaction

    batches = -(-orders // rows_per_batch)
    parameters = {"orders": orders, "per_batch": rows_per_batch, "batches": batches}
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in FILL:
            cursor.execute(statement, parameters)


FILL = [
    f"""INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff,
        is_active, date_joined)
    SELECT '!', false, 'bench' || u, '', '', '', false, true, now() FROM generate_series(1, {USERS}) u""",
    f"""INSERT INTO orders_product (sku, name, kind, unit_price, active, stock, stock_received, attributes)
    SELECT 'BENCH-' || p, 'Bench product ' || p, 'goods', 10 + p, true,
        CASE WHEN p %% 2 = 0 THEN {STOCK} END, CASE WHEN p %% 2 = 0 THEN {STOCK} END, '{{}}'
    FROM generate_series(0, {PRODUCTS - 1}) p""",
    """CREATE TEMP TABLE bench_batch ON COMMIT DROP AS
    SELECT b, gen_random_uuid() AS id,
        (SELECT MIN(id) FROM auth_user) + b %% 100 AS owner_id,
        LEAST(%(per_batch)s, %(orders)s - b * %(per_batch)s) AS placed,
        CASE WHEN b %% 10 = 3 THEN 1 ELSE 0 END AS failed,
        CASE WHEN b %% 10 < 6 THEN 'paid' WHEN b %% 10 < 8 THEN 'awaiting_payment'
             WHEN b %% 10 = 8 THEN 'expired' ELSE 'cancelled' END AS status,
        b %% 20 = 8 AS paid_too_late
    FROM generate_series(0, %(batches)s - 1) b""",
    """INSERT INTO orders_batch (id, status, source, language, row_count, accepted_rows, request_fingerprint,
        dispatch_count, dispatched_at, inconsistency, created_at, updated_at, placed_at, owner_id)
    SELECT id, status, 'api', 'en', placed + failed, placed + failed, '', 1, now(), '', now(), now(), now(), owner_id
    FROM bench_batch""",
    """CREATE TEMP TABLE bench_order ON COMMIT DROP AS
    SELECT i, b.id AS batch_id, b.owner_id, b.status AS batch_status, i %% %(per_batch)s AS row_index,
        i %% 10 >= 7 AS mobile, (SELECT MIN(id) FROM orders_product) + i %% 20 AS product_id,
        CASE WHEN i %% 10 >= 7 THEN 1 ELSE 1 + i %% 3 END AS quantity,
        b.status = 'paid' AND i %% 97 = 0 AS refunded
    FROM generate_series(0, %(orders)s - 1) i JOIN bench_batch b ON b.b = i / %(per_batch)s""",
    """INSERT INTO orders_order (number, row_index, kind, quantity, unit_price, amount, currency, status, details,
        created_at, updated_at, batch_id, owner_id, product_id)
    SELECT 'B' || lpad(i::text, 12, '0'), row_index, CASE WHEN mobile THEN 'mobile' ELSE 'goods' END, quantity,
        price, price * quantity, 'CNY',
        CASE WHEN refunded THEN 'refunded'
             WHEN batch_status = 'paid' THEN CASE WHEN mobile THEN 'fulfilled' ELSE 'paid' END
             ELSE batch_status END,
        CASE WHEN mobile THEN jsonb_build_object('phone', '138' || lpad(i::text, 8, '0')) ELSE '{}' END,
        now(), now(), batch_id, owner_id, CASE WHEN mobile THEN NULL ELSE product_id END
    FROM bench_order, LATERAL (SELECT CASE WHEN mobile THEN 49.50 ELSE 10 + i %% 20 END AS price) p""",
    """INSERT INTO orders_batchrow (row_index, kind, data, outcome, errors, errors_by_language, failure_code,
        failure_message, settled_at, batch_id)
    SELECT row_index, kind, '{}'::jsonb, 'placed', '{}'::jsonb, '{}'::jsonb, '', '', now(), batch_id FROM orders_order
    UNION ALL
    SELECT placed, 'goods', '{}'::jsonb, 'failed', '{}'::jsonb, '{}'::jsonb, 'out_of_stock', 'out of stock', now(), id
    FROM bench_batch WHERE failed = 1""",
    """INSERT INTO payments_payment (amount, refunded_amount, currency, status, reference,
        needs_attention, attention_note, paid_at, expires_at, created_at, updated_at, batch_id, owner_id)
    SELECT o.amount, o.refunded, 'CNY',
        CASE b.status WHEN 'paid' THEN CASE WHEN o.refunded = 0 THEN 'succeeded'
                                            WHEN o.refunded = o.amount THEN 'refunded'
                                            ELSE 'partially_refunded' END
                      WHEN 'awaiting_payment' THEN 'pending' ELSE b.status END,
        'pay_bench_' || b.b, b.paid_too_late, '',
        CASE WHEN b.status = 'paid' THEN now() END, now() + interval '30 minutes', now(), now(), b.id, b.owner_id
    FROM bench_batch b JOIN (
        SELECT batch_id, SUM(amount) AS amount, COALESCE(SUM(amount) FILTER (WHERE status = 'refunded'), 0) AS refunded
        FROM orders_order GROUP BY batch_id) o ON o.batch_id = b.id""",
    # One attempt per payment: the one that paid it, the one paid too late (refunded whole), one still open,
    # or one closed with its payment.
    """INSERT INTO payments_paymentattempt (provider, method, reference, amount, currency, expires_at, status,
        transaction_id, redirect_url, qr_text, refunded_amount, needs_attention, attention_note, created_at,
        updated_at, payment_id)
    SELECT 'sandbox', 'page', 'pa_bench_' || p.id, p.amount, 'CNY', p.expires_at,
        CASE WHEN b.paid_too_late THEN 'unhonoured' WHEN b.status = 'paid' THEN 'succeeded'
             WHEN b.status = 'awaiting_payment' THEN 'open' ELSE 'closed' END,
        '', '', '', CASE WHEN b.paid_too_late THEN p.amount ELSE p.refunded_amount END, b.paid_too_late, '',
        now(), now(), p.id
    FROM payments_payment p JOIN bench_batch b ON b.id = p.batch_id""",
    """INSERT INTO payments_paymentallocation (amount, order_id, payment_id)
    SELECT o.amount, o.id, p.id FROM orders_order o JOIN payments_payment p ON p.batch_id = o.batch_id""",
    """INSERT INTO payments_gatewayevent (provider, event_id, type, payload, outcome, needs_attention, received_at,
        payment_id, attempt_id)
    SELECT 'sandbox', 'evt_bench_' || p.id, 'payment.succeeded', '{}', 'payment succeeded; orders paid',
        b.paid_too_late, now(), p.id, a.id
    FROM payments_payment p JOIN bench_batch b ON b.id = p.batch_id
        JOIN payments_paymentattempt a ON a.payment_id = p.id
    WHERE b.status = 'paid' OR b.paid_too_late""",
    """INSERT INTO payments_refund (amount, status, reason, provider_reference, requested_at, created_at, updated_at,
        order_id, payment_id, attempt_id, reference, kind)
    SELECT o.amount, 'succeeded', '', 're_bench_' || o.id, now(), now(), now(), o.id, a.payment_id, t.id,
        'rfd_bench_' || o.id, 'share'
    FROM orders_order o JOIN payments_paymentallocation a ON a.order_id = o.id
        JOIN payments_paymentattempt t ON t.payment_id = a.payment_id
    WHERE o.status = 'refunded'
    UNION ALL
    SELECT p.amount, 'succeeded', '', 're_bench_p' || p.id, now(), now(), now(), NULL, p.id, t.id,
        'rfd_bench_p' || p.id, 'unhonoured'
    FROM payments_payment p JOIN bench_batch b ON b.id = p.batch_id
        JOIN payments_paymentattempt t ON t.payment_id = p.id
    WHERE b.paid_too_late""",
    # Each refund carried to the rail by a request of its own (as every refund before grouping was).
    """INSERT INTO payments_refundrequest (amount, status, reason, provider_reference, requested_at, created_at,
        updated_at, payment_id, attempt_id, reference)
    SELECT amount, status, reason, provider_reference, requested_at, created_at, updated_at, payment_id, attempt_id,
        reference
    FROM payments_refund""",
    """UPDATE payments_refund r SET request_id = q.id FROM payments_refundrequest q WHERE q.reference = r.reference""",
    """INSERT INTO recharge_fulfilment (status, attempts, extra_attempts, queries, upstream_reference, last_error,
        created_at, updated_at, order_id)
    SELECT CASE WHEN status = 'fulfilled' THEN 'succeeded' ELSE 'failed' END, 1, 0, 0, 'up_bench_' || id, '', now(),
        now(), id
    FROM orders_order WHERE kind = 'mobile' AND status IN ('fulfilled', 'refunded')""",
    """INSERT INTO recharge_sandboxtopup (idempotency_key, account, amount, calls, performed, reference, created_at)
    SELECT number, details->>'phone', amount, 1, 1, 'up_bench_' || id, now()
    FROM orders_order WHERE kind = 'mobile' AND status = 'fulfilled'""",
    """UPDATE orders_product p SET stock = p.stock_received - held.units
    FROM (SELECT product_id, SUM(quantity) AS units FROM orders_order
          WHERE status NOT IN ('cancelled', 'expired') AND product_id IS NOT NULL GROUP BY product_id) held
    WHERE held.product_id = p.id AND p.stock IS NOT NULL""",
]


if __name__ == "__main__":
    raise SystemExit(main())
