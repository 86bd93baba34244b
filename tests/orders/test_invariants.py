"""The invariant checker (orders/invariants.py): each check finds exactly the state that breaks it, the
registry holds every app's checks, and `manage.py check_invariants` reports and exits accordingly.

Each test builds a consistent state through the services, breaks one thing in the database directly, and
asserts that the checker names exactly that (the kind of violation and the ids)."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db.models import F
from django.utils import timezone

from orders import invariants, services
from orders.invariants import invariants_check
from orders.models import Batch, BatchRow, Order, Product
from tests.invariants import drop_unique, found, submit
from tests.orders.factories import ProductFactory


@pytest.fixture
def goods(db):
    ProductFactory(sku="LAMP", unit_price=Decimal("40.00"), stock=5)
    ProductFactory(sku="POSTER", unit_price=Decimal("18.00"), stock=None)


def test_a_consistent_database_passes_every_check(user, goods, placed_batch):
    submit(user, [{"kind": "goods", "sku": "LAMP", "quantity": 2}, {"kind": "goods", "sku": "POSTER"}])
    placed_batch()

    report = invariants_check()

    assert report.ok, report.summary()
    assert report.checked == len(invariants.registered())
    assert report.summary().startswith(f"all {report.checked} checks passed")


def test_every_app_registers_its_checks():
    names = {invariant.name for invariant in invariants.registered()}

    assert {"row_without_outcome", "stock_not_conserved"} <= names  # orders
    assert {"batch_with_two_payments", "unhonoured_capture_not_refunded"} <= names  # payments, from its ready()
    assert {"top_up_credited_twice", "fulfilment_stuck"} <= names  # the top-up app, from its ready()


def test_a_second_check_under_a_taken_name_is_refused():
    taken = invariants.registered()[0]

    with pytest.raises(ValueError, match="already registered"):
        invariants.register(
            invariants.Invariant(taken.name, "things", "another meaning", lambda context: ("SELECT 1", []))
        )


# --- SPEC 7.1 ----------------------------------------------------------------------------------------------


def test_a_batch_missing_an_accepted_row_is_reported(user, goods):
    batch = submit(user, [{"kind": "goods", "sku": "POSTER"}])
    Batch.objects.filter(pk=batch.pk).update(row_count=F("row_count") + 1, accepted_rows=F("accepted_rows") + 1)

    assert found() == {"rows_lost": [str(batch.pk)]}


def test_a_row_without_outcome_in_a_finished_batch_is_reported(user):
    ProductFactory(sku="GONE", stock=0)
    batch = submit(user, [{"kind": "goods", "sku": "GONE"}, {"kind": "goods", "sku": "GONE"}])
    assert batch.status == Batch.Status.FAILED
    row = batch.rows.get(row_index=1)
    BatchRow.objects.filter(pk=row.pk).update(outcome=BatchRow.Outcome.PENDING)

    assert found() == {"row_without_outcome": [str(row.pk)]}


def test_pending_rows_of_a_batch_still_placing_are_not_a_violation(user, goods):
    submit(user, [{"kind": "goods", "sku": "POSTER"}] * 3, place=False)

    assert found() == {}


def test_a_row_with_two_orders_is_reported(user, goods):
    batch = submit(user, [{"kind": "goods", "sku": "POSTER"}], finalize=False)
    drop_unique(Order._meta.db_table, ["batch_id", "row_index"])
    first = batch.orders.get()
    second = Order.objects.create(
        owner=user, batch=batch, row_index=0, kind="goods", unit_price=first.unit_price, amount=first.amount
    )

    assert found() == {"row_with_two_orders": sorted([str(first.pk), str(second.pk)], key=int)}


def test_a_placed_row_without_its_order_is_reported(user, goods):
    batch = submit(user, [{"kind": "goods", "sku": "POSTER"}], finalize=False)
    batch.orders.all().delete()

    assert found() == {"placed_row_without_order": [str(batch.rows.get().pk)]}


def test_an_order_whose_row_failed_is_reported(user, goods):
    batch = submit(user, [{"kind": "goods", "sku": "POSTER"}], finalize=False)
    batch.rows.update(outcome=BatchRow.Outcome.FAILED)

    assert found() == {"order_without_placed_row": [str(batch.orders.get().pk)]}


# --- SPEC 7.4 ----------------------------------------------------------------------------------------------


def redrive_time() -> timedelta:
    period = invariants.beat_period("orders.tasks.recover_stuck_batches")
    return timedelta(seconds=settings.BATCH_PLACING_TIMEOUT_SECONDS + period + invariants.REDRIVE_SLACK_SECONDS)


def test_a_batch_without_progress_past_its_redrive_time_is_reported(user, goods):
    batch = submit(user, [{"kind": "goods", "sku": "POSTER"}] * 2, place=False)
    long_ago = timezone.now() - redrive_time() - timedelta(seconds=1)
    Batch.objects.filter(pk=batch.pk).update(created_at=long_ago, dispatched_at=long_ago)

    assert found() == {"batch_stuck_placing": [str(batch.pk)]}


def test_an_old_batch_that_still_makes_progress_is_not_stuck(user, goods):
    batch = submit(user, [{"kind": "goods", "sku": "POSTER"}] * 2, place=False)
    long_ago = timezone.now() - redrive_time() - timedelta(seconds=1)
    Batch.objects.filter(pk=batch.pk).update(created_at=long_ago, dispatched_at=long_ago)
    services.order_place(batch_id=batch.pk, row_index=0)  # a row settles now

    assert found() == {}
    # ...and it becomes stuck once that progress is itself older than the re-drive time
    assert found_at(timezone.now() + redrive_time() + timedelta(seconds=1)) == {"batch_stuck_placing": [str(batch.pk)]}


def found_at(now) -> dict[str, list[str]]:
    return invariants_check(now=now, names=["batch_stuck_placing"]).found()


# --- Stock conserved ---------------------------------------------------------------------------------------


def test_a_unit_given_back_twice_breaks_stock_conservation(user, goods):
    submit(user, [{"kind": "goods", "sku": "LAMP", "quantity": 2}])
    lamp = Product.objects.get(sku="LAMP")
    assert (lamp.stock, lamp.stock_received) == (3, 5)
    Product.objects.filter(pk=lamp.pk).update(stock=F("stock") + 2)  # released, though the order still holds it

    assert found() == {"stock_not_conserved": [str(lamp.pk)]}


def test_releasing_a_cancelled_batch_keeps_stock_conserved(user, goods):
    batch = submit(user, [{"kind": "goods", "sku": "LAMP", "quantity": 2}])

    services.batch_cancel(batch_id=batch.pk, owner=user)

    assert Product.objects.get(sku="LAMP").stock == 5
    assert found() == {}


def test_a_stale_save_by_staff_does_not_undo_units_taken_meanwhile(user, goods):
    stale = Product.objects.get(sku="LAMP")  # staff open the product page: stock 5
    submit(user, [{"kind": "goods", "sku": "LAMP", "quantity": 2}])  # two are sold meanwhile

    stale.name = "Desk lamp"
    stale.save()

    lamp = Product.objects.get(sku="LAMP")
    assert (lamp.name, lamp.stock, lamp.stock_received) == ("Desk lamp", 3, 5)
    assert found() == {}


def test_setting_the_stock_counts_the_difference_as_received(user, goods):
    stale = Product.objects.get(sku="LAMP")
    submit(user, [{"kind": "goods", "sku": "LAMP", "quantity": 2}])  # 3 left

    stale.stock = 10  # staff counted ten on the shelf
    stale.save()

    lamp = Product.objects.get(sku="LAMP")
    assert (lamp.stock, lamp.stock_received) == (10, 12)  # 5 before, 7 more now; 2 held by the order
    assert found() == {}


def test_a_product_refreshed_and_saved_again_changes_no_stock(user, goods):
    lamp = Product.objects.get(sku="LAMP")
    submit(user, [{"kind": "goods", "sku": "LAMP"}])
    lamp.refresh_from_db()  # stock 4 now
    submit(user, [{"kind": "goods", "sku": "LAMP"}])  # 3 left

    lamp.save()

    assert Product.objects.values_list("stock", "stock_received").get(pk=lamp.pk) == (3, 5)
    assert found() == {}


def test_tracking_stock_of_a_product_that_had_none_counts_units_already_sold(user, goods):
    batch = submit(user, [{"kind": "goods", "sku": "POSTER", "quantity": 3}])
    poster = Product.objects.get(sku="POSTER")

    poster.stock = 4
    poster.save()
    services.batch_cancel(batch_id=batch.pk, owner=user)  # gives back 3 it never took from a tracked stock

    poster.refresh_from_db()
    assert (poster.stock, poster.stock_received) == (7, 7)
    assert found() == {}


def test_untracking_stock_leaves_nothing_to_conserve(user, goods):
    submit(user, [{"kind": "goods", "sku": "LAMP"}])
    lamp = Product.objects.get(sku="LAMP")

    lamp.stock = None
    lamp.save()

    assert Product.objects.values_list("stock", "stock_received").get(pk=lamp.pk) == (None, None)
    assert found() == {}


# --- The command -------------------------------------------------------------------------------------------


def test_the_command_says_all_checks_passed_and_exits_0(goods, capsys):
    call_command("check_invariants")

    assert capsys.readouterr().out.startswith(f"all {len(invariants.registered())} checks passed in ")


def test_the_command_prints_one_line_per_kind_of_violation_and_exits_1(user, goods, capsys):
    batch = submit(user, [{"kind": "goods", "sku": "LAMP"}])
    Batch.objects.filter(pk=batch.pk).update(row_count=F("row_count") + 1, accepted_rows=F("accepted_rows") + 1)
    Product.objects.filter(sku="LAMP").update(stock=0)

    with pytest.raises(CommandError) as failed:
        call_command("check_invariants")

    assert failed.value.returncode == 1
    assert str(failed.value).startswith(f"2 of {len(invariants.registered())} invariant checks failed")
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"rows_lost: 1 batches: {invariants.INVARIANTS[0].explanation} (e.g. {batch.pk})",
        f"stock_not_conserved: 1 products: {invariants.INVARIANTS[-1].explanation} "
        f"(e.g. {Product.objects.get(sku='LAMP').pk})",
    ]


def test_the_command_reports_json_for_machines_and_caps_the_ids_shown(user, capsys):
    ProductFactory(sku="GONE", stock=0)
    batch = submit(user, [{"kind": "goods", "sku": "GONE"}] * 5)
    batch.rows.update(outcome=BatchRow.Outcome.PENDING)

    with pytest.raises(CommandError):
        call_command("check_invariants", "--json", "--show", "2")

    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["checked"] == len(invariants.registered())
    [violation] = report["violations"]
    rows = sorted(batch.rows.values_list("pk", flat=True))
    assert violation == {
        "name": "row_without_outcome",
        "subject": "batch rows",
        "explanation": invariants.INVARIANTS[1].explanation,
        "count": 5,
        "ids": [str(rows[0]), str(rows[1])],
    }


def test_the_command_runs_only_the_checks_named(user, capsys):
    ProductFactory(sku="GONE", stock=0)
    batch = submit(user, [{"kind": "goods", "sku": "GONE"}])
    batch.rows.update(outcome=BatchRow.Outcome.PENDING)

    call_command("check_invariants", "--only", "rows_lost", "--only", "stock_not_conserved")

    assert capsys.readouterr().out.startswith("all 2 checks passed")
