"""The payments app's checks (payments/invariants.py): a clean life of batches through the sandbox gateway
passes them all; each breakage in the database is found, exactly."""

from datetime import timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import F
from django.utils import timezone

from orders import invariants
from orders import services as order_services
from orders.models import Batch, Order
from payments import services
from payments.models import Payment, PaymentAllocation, PaymentAttempt, Refund, RefundRequest
from payments.tasks import expire_unpaid_payments
from tests.invariants import drop_unique, found, pay
from tests.payments.factories import PaymentAttemptFactory
from tests.payments.refunding import refund_order_now
from tests.payments.sandbox import deliver, pay_at_gateway


def test_batches_placed_paid_refunded_cancelled_and_expired_pass_every_check(placed_batch, client, user):
    # given: a batch paid at the gateway and one of its orders refunded through it
    paid = placed_batch()
    pay_at_gateway(client, paid.payment)
    refund_order_now(paid.orders.get(row_index=1), reason="customer changed their mind")
    deliver(client, "refund.succeeded")
    # a batch cancelled before paying, and one left to expire
    cancelled = placed_batch(prices=("5.00",))
    order_services.batch_cancel(batch_id=cancelled.pk, owner=user)
    expired = placed_batch(prices=("7.00", "8.00"))
    Payment.objects.filter(batch=expired).update(expires_at=timezone.now() - timedelta(minutes=1))
    expire_unpaid_payments()

    paid.refresh_from_db()
    assert paid.payment.status == Payment.Status.PARTIALLY_REFUNDED and paid.payment.refunded_amount == Decimal("20")
    assert Batch.objects.get(pk=cancelled.pk).status == Batch.Status.CANCELLED
    assert Batch.objects.get(pk=expired.pk).status == Batch.Status.EXPIRED
    report = invariants.invariants_check()
    assert report.ok, report.summary()


# --- SPEC 7.2 and 7.3 --------------------------------------------------------------------------------------


def test_a_batch_with_two_payments_is_reported(placed_batch):
    # Two payments each covering the batch's orders: the double charge the one-to-one constraints prevent.
    drop_unique(Payment._meta.db_table, ["batch_id"])
    drop_unique(PaymentAllocation._meta.db_table, ["order_id"])
    batch = placed_batch()
    first = batch.payment
    second = Payment.objects.create(batch=batch, owner=batch.owner, amount=first.amount, expires_at=first.expires_at)
    PaymentAllocation.objects.bulk_create(
        [PaymentAllocation(payment=second, order=order, amount=order.amount) for order in batch.orders.all()]
    )

    assert found() == {"batch_with_two_payments": [str(first.pk), str(second.pk)]}


def test_a_billed_batch_without_a_payment_is_reported(placed_batch):
    batch = placed_batch()
    Payment.objects.filter(batch=batch).delete()

    assert found() == {"batch_without_payment": [str(batch.pk)]}


def test_a_payment_for_a_batch_still_placing_is_reported(placed_batch):
    batch = placed_batch()
    Batch.objects.filter(pk=batch.pk).update(status=Batch.Status.PLACING)

    assert found() == {"payment_before_placing_finished": [str(batch.payment.pk)]}


def test_a_payment_whose_amount_differs_from_its_allocations_is_reported(placed_batch):
    batch = placed_batch()
    Payment.objects.filter(pk=batch.payment.pk).update(amount=F("amount") + 1)

    assert found() == {"payment_amount_differs_from_allocations": [str(batch.payment.pk)]}


def test_an_order_allocated_more_than_its_amount_is_reported(placed_batch):
    batch = placed_batch()
    order = batch.orders.get(row_index=0)
    PaymentAllocation.objects.filter(order=order).update(amount=F("amount") + 1)
    Payment.objects.filter(pk=batch.payment.pk).update(amount=F("amount") + 1)  # the payment agrees with it

    assert found() == {"order_not_allocated_exactly": [str(order.pk)]}


# --- SPEC 7.5 ----------------------------------------------------------------------------------------------


def test_an_order_paid_without_a_succeeded_payment_is_reported(placed_batch):
    batch = placed_batch()
    order = batch.orders.get(row_index=2)
    Order.objects.filter(pk=order.pk).update(status=Order.Status.PAID)

    assert found() == {"order_paid_without_succeeded_payment": [str(order.pk)]}


def test_a_succeeded_payment_whose_orders_were_not_marked_paid_is_reported(placed_batch):
    batch = placed_batch()
    PaymentAttemptFactory(payment=batch.payment, status=PaymentAttempt.Status.SUCCEEDED)
    Payment.objects.filter(pk=batch.payment.pk).update(status=Payment.Status.SUCCEEDED)

    assert found() == {"paid_payment_not_applied": [str(batch.payment.pk)]}


def test_refunds_above_what_was_paid_are_reported(placed_batch):
    batch = placed_batch()  # 10 + 20 + 30
    pay(batch)
    attempt = batch.payment.attempts.get()
    first, second = batch.orders.filter(row_index__in=[0, 1]).order_by("row_index")
    for order, amount in ((first, "50.00"), (second, "20.00")):
        Refund.objects.create(payment=batch.payment, attempt=attempt, order=order, amount=Decimal(amount))

    assert found() == {"refunds_exceed_payment": [str(batch.payment.pk)], "refunds_exceed_attempt": [str(attempt.pk)]}


def test_a_refund_of_a_payment_never_paid_is_reported(placed_batch):
    batch = placed_batch()
    attempt = PaymentAttemptFactory(payment=batch.payment)  # open: nothing captured
    refund = Refund.objects.create(
        payment=batch.payment, attempt=attempt, order=batch.orders.first(), amount=Decimal("10.00")
    )

    assert found() == {
        "refunds_exceed_payment": [str(batch.payment.pk)],
        "refunds_exceed_attempt": [str(attempt.pk)],
        "refund_of_the_wrong_attempt": [str(refund.pk)],
    }


def test_a_refund_of_an_orders_share_through_another_attempt_than_the_one_that_paid_is_reported(placed_batch):
    batch = placed_batch()
    pay(batch)
    declined = PaymentAttemptFactory(payment=batch.payment, status=PaymentAttempt.Status.DECLINED)
    refund = Refund.objects.create(
        payment=batch.payment, attempt=declined, order=batch.orders.first(), amount=Decimal("10.00")
    )

    assert found() == {"refunds_exceed_attempt": [str(declined.pk)], "refund_of_the_wrong_attempt": [str(refund.pk)]}


def test_an_attempts_refunded_amount_without_confirmed_refunds_is_reported(placed_batch):
    batch = placed_batch()
    pay(batch)
    attempt = batch.payment.attempts.get()
    PaymentAttempt.objects.filter(pk=attempt.pk).update(refunded_amount=Decimal("10.00"))

    assert found() == {"refunds_exceed_attempt": [str(attempt.pk)]}


# --- Attempts: one success per payment ----------------------------------------------------------------------


def test_a_paid_payment_with_two_succeeded_attempts_is_reported(placed_batch):
    with connection.cursor() as cursor:  # the partial unique index that forbids it
        cursor.execute("DROP INDEX attempt_one_success_per_payment")
    batch = placed_batch()
    pay(batch)
    PaymentAttemptFactory(payment=batch.payment, status=PaymentAttempt.Status.SUCCEEDED)

    assert found() == {"payment_success_disagrees_with_attempts": [str(batch.payment.pk)]}


def test_a_paid_payment_without_a_succeeded_attempt_and_a_success_of_an_unpaid_one_are_reported(placed_batch):
    paid, unpaid = placed_batch(), placed_batch(prices=("5.00",))
    pay(paid)
    PaymentAttempt.objects.filter(payment=paid.payment).update(status=PaymentAttempt.Status.CLOSED)
    PaymentAttemptFactory(payment=unpaid.payment, status=PaymentAttempt.Status.SUCCEEDED)

    assert found() == {
        "payment_success_disagrees_with_attempts": [str(pk) for pk in sorted([paid.payment.pk, unpaid.payment.pk])]
    }


def test_an_attempt_for_another_amount_than_its_payment_is_reported(placed_batch):
    batch = placed_batch()
    attempt = PaymentAttemptFactory(payment=batch.payment, amount=Decimal("59.99"))

    assert found() == {"attempt_amount_differs_from_payment": [str(attempt.pk)]}


def test_a_refunded_amount_without_confirmed_refunds_is_reported(placed_batch):
    batch = placed_batch()
    pay(batch)
    Payment.objects.filter(pk=batch.payment.pk).update(refunded_amount=Decimal("10.00"))

    assert found() == {"refunds_exceed_payment": [str(batch.payment.pk)]}


def test_an_order_refunded_without_a_confirmed_refund_is_reported(placed_batch):
    batch = placed_batch()
    pay(batch)
    order = batch.orders.get(row_index=0)
    Order.objects.filter(pk=order.pk).update(status=Order.Status.REFUNDED)

    assert found() == {"refund_disagrees_with_order": [str(order.pk)]}


# --- SPEC 7.8 ----------------------------------------------------------------------------------------------


def test_money_captured_for_an_expired_payment_and_kept_is_reported(placed_batch):
    batch = placed_batch()
    payment = batch.payment
    attempt = PaymentAttemptFactory(payment=payment)
    Payment.objects.filter(pk=payment.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    expire_unpaid_payments()
    # a success arrived afterwards, and nothing gave the money back
    PaymentAttempt.objects.filter(pk=attempt.pk).update(status=PaymentAttempt.Status.UNHONOURED)

    assert found() == {"unhonoured_capture_not_refunded": [str(attempt.pk)]}


def test_a_second_capture_of_a_paid_payment_kept_is_reported(placed_batch):
    batch = placed_batch()
    pay(batch)
    second = PaymentAttemptFactory(payment=batch.payment, status=PaymentAttempt.Status.UNHONOURED)

    assert found() == {"unhonoured_capture_not_refunded": [str(second.pk)]}


# --- Stuck work --------------------------------------------------------------------------------------------


def test_a_refund_request_never_acknowledged_past_its_retry_time_is_reported(placed_batch):
    batch = placed_batch()
    pay(batch)
    attempt = batch.payment.attempts.get()
    refund = RefundRequest.objects.create(payment=batch.payment, attempt=attempt, amount=Decimal("10.00"))
    Refund.objects.create(
        payment=batch.payment, attempt=attempt, order=batch.orders.first(), amount=Decimal("10.00"), request=refund
    )
    retry_time = services.REFUND_REQUEST_RETRY_AFTER.total_seconds() + invariants.beat_period(
        "payments.tasks.request_unanswered_refunds"
    )
    long_ago = timezone.now() - timedelta(seconds=retry_time + invariants.REDRIVE_SLACK_SECONDS + 1)

    assert found() == {}  # just recorded: its request may be on its way
    RefundRequest.objects.filter(pk=refund.pk).update(created_at=long_ago)
    assert found() == {"refund_request_stuck": [str(refund.pk)]}


def test_a_payment_pending_past_its_expiry_and_the_next_expiry_run_is_reported(placed_batch):
    batch = placed_batch()
    period = invariants.beat_period("payments.tasks.expire_unpaid_payments") + invariants.REDRIVE_SLACK_SECONDS

    Payment.objects.filter(pk=batch.payment.pk).update(expires_at=timezone.now() - timedelta(seconds=period - 5))
    assert found() == {}  # the expiry job has not necessarily run since
    Payment.objects.filter(pk=batch.payment.pk).update(expires_at=timezone.now() - timedelta(seconds=period + 1))
    assert found() == {"payment_stuck_past_expiry": [str(batch.payment.pk)]}
