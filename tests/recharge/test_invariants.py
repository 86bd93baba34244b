"""The top-up checks (recharge/invariants.py): a clean life of top-ups passes them, each breakage is found."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from orders import invariants
from orders.models import Order
from payments.models import Payment, Refund
from recharge import services
from recharge.invariants import REDRIVE_JOB, _redrive_after_seconds
from recharge.models import Fulfilment, SandboxTopUp
from tests.invariants import found, pay, submit
from tests.orders.flows import refunds_requested
from tests.payments.sandbox import deliver, pay_at_gateway
from tests.recharge.factories import game_product

OK_PHONE, ALWAYS_FAILS = "13800138000", "13800000000"


def mobile(phone=OK_PHONE):
    return {"kind": "mobile", "phone": phone, "face_value": "50"}


def fulfil(order: Order) -> None:
    """Run the top-up synchronously until it succeeds or fails for good (no worker)."""
    for _ in range(settings.RECHARGE_MAX_ATTEMPTS):
        services.fulfilment_attempt(order_id=order.pk)
        if Fulfilment.objects.get(order=order).status in (Fulfilment.Status.SUCCEEDED, Fulfilment.Status.FAILED):
            return


def test_top_ups_fulfilled_and_a_failed_one_refunded_pass_every_check(user, client):
    game_product()
    batch = submit(
        user,
        [
            mobile(),
            mobile(ALWAYS_FAILS),
            {"kind": "game", "sku": "GAME-GOLD-60", "account": "user-123456", "quantity": 2},
        ],
    )
    pay_at_gateway(client, batch.payment)

    for order in batch.orders.all():
        fulfil(order)
    refunds_requested(batch)
    deliver(client, "refund.succeeded")

    statuses = dict(batch.orders.values_list("row_index", "status"))
    assert statuses == {0: Order.Status.FULFILLED, 1: Order.Status.REFUNDED, 2: Order.Status.FULFILLED}
    assert Payment.objects.get(batch=batch).status == Payment.Status.PARTIALLY_REFUNDED
    assert list(SandboxTopUp.objects.filter(performed__gt=0).values_list("performed", flat=True)) == [1, 1]
    report = invariants.invariants_check()
    assert report.ok, report.summary()


def test_a_top_up_credited_twice_is_reported(user):
    batch = submit(user, [mobile()])
    pay(batch)
    order = batch.orders.get()
    fulfil(order)
    SandboxTopUp.objects.filter(idempotency_key=order.number).update(performed=2)

    assert found() == {"top_up_credited_twice": [order.number]}


def test_a_paid_top_up_order_without_a_fulfilment_is_reported(user):
    batch = submit(user, [mobile(), mobile("13912345678")])
    pay(batch)
    order = batch.orders.get(row_index=1)
    Fulfilment.objects.filter(order=order).delete()

    assert found() == {"fulfilment_disagrees_with_order": [str(order.pk)]}


def test_a_fulfilled_order_whose_top_up_did_not_succeed_is_reported(user):
    batch = submit(user, [mobile()])
    pay(batch)
    order = batch.orders.get()
    Order.objects.filter(pk=order.pk).update(status=Order.Status.FULFILLED)

    assert found() == {"fulfilment_disagrees_with_order": [str(order.pk)]}


def redrive_time() -> timedelta:
    seconds = _redrive_after_seconds() + invariants.beat_period(REDRIVE_JOB) + invariants.REDRIVE_SLACK_SECONDS
    return timedelta(seconds=seconds)


def test_a_top_up_that_has_not_moved_past_its_redrive_time_is_reported(user):
    batch = submit(user, [mobile()])
    pay(batch)
    fulfilment = Fulfilment.objects.get(order__batch=batch)
    assert fulfilment.status == Fulfilment.Status.PENDING  # its task is queued; nothing ran it here

    assert found() == {}
    Fulfilment.objects.filter(pk=fulfilment.pk).update(
        updated_at=timezone.now() - redrive_time() - timedelta(seconds=1)
    )
    assert found() == {"fulfilment_stuck": [str(fulfilment.pk)]}


def test_a_top_up_failed_for_good_without_a_refund_is_reported(user):
    batch = submit(user, [mobile(ALWAYS_FAILS)])
    pay(batch)  # no charge at the gateway: the refund it asks for is refused
    order = batch.orders.get()
    fulfil(order)
    refunds_requested(batch)
    fulfilment = Fulfilment.objects.get(order=order)
    assert fulfilment.status == Fulfilment.Status.FAILED
    assert not Refund.objects.exclude(status=Refund.Status.FAILED).exists()
    period = invariants.beat_period(REDRIVE_JOB) + invariants.REDRIVE_SLACK_SECONDS

    assert found() == {}  # the re-drive job has not necessarily looked since
    Fulfilment.objects.filter(pk=fulfilment.pk).update(updated_at=timezone.now() - timedelta(seconds=period + 1))
    assert found() == {"fulfilment_failed_not_refunded": [str(fulfilment.pk)]}
