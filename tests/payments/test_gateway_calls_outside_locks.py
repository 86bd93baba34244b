"""No gateway call while a row lock is held: a gateway that takes its time (here: until the test releases it)
must not stop anyone else from locking the batch, its payment or its orders.

Each gateway operation runs in a thread of its own (its own database connection) while the test, in
another transaction, takes the locks with PostgreSQL's lock_timeout at one second."""

import threading
from contextlib import contextmanager
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.utils import timezone

from orders import locking
from orders import services as order_services
from orders.models import Batch, Order
from payments import providers, services
from payments.models import Payment, PaymentAttempt, Refund, RefundRequest
from payments.providers import AttemptState, GatewayState, Notification, SandboxProvider
from payments.sandbox import gateway
from tests.payments.sandbox import charge_of, charge_reference, open_attempt

LOCK_TIMEOUT = "1s"


class BlockingProvider(SandboxProvider):
    """The sandbox, except that every call waits until the test lets it go."""

    name = "blocking"

    def __init__(self):
        self.entered = threading.Event()
        self.release = threading.Event()

    def _block(self):
        self.entered.set()
        assert self.release.wait(timeout=30), "the test never released the gateway"

    def start(self, attempt, **checkout):
        self._block()
        return super().start(attempt, **checkout)

    def close(self, attempt):
        self._block()
        super().close(attempt)

    def refund(self, refund, *, notify_url):
        self._block()
        return super().refund(refund, notify_url=notify_url)

    def query(self, attempt):
        self._block()
        return AttemptState(GatewayState.OPEN)


@pytest.fixture
def blocking_provider(monkeypatch):
    provider = BlockingProvider()
    monkeypatch.setitem(providers._PROVIDERS, provider.name, provider)
    yield provider
    provider.release.set()


@contextmanager
def running_in_a_thread(call):
    """Run `call` in another thread with its own connection; re-raise what it raised when the block ends."""
    outcome = {}

    def run():
        try:
            outcome["value"] = call()
        except Exception as error:  # noqa: BLE001 - handed to the test thread below, which re-raises it
            outcome["error"] = error
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield outcome
    finally:
        thread.join(timeout=30)
    if "error" in outcome:
        raise outcome["error"]


def lock_everything_within_a_second(batch: Batch) -> None:
    """Take every lock the payment path takes, failing if any is held by someone else for over a second."""
    with locking.transaction():
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        locking.lock_one(Batch.objects.filter(pk=batch.pk))
        locking.lock_one(Payment.objects.filter(batch=batch))
        locking.lock_all(PaymentAttempt.objects.filter(payment__batch=batch))
        locking.lock_all(RefundRequest.objects.filter(payment__batch=batch))
        locking.lock_all(Order.objects.filter(batch=batch))
        locking.lock_all(Refund.objects.filter(payment__batch=batch))


def use_provider(batch, provider):
    """The batch's attempts so far were made with this provider (it talks to the sandbox all the same)."""
    PaymentAttempt.objects.filter(payment__batch=batch).update(provider=provider.name)


def pay(batch):
    """Paid at the sandbox, and the payment applied here as its notification would."""
    attempt = open_attempt(batch.payment)
    with mock.patch("payments.sandbox.gateway.queue_task"):  # its notification is applied below instead
        gateway.charge_decide(charge_reference=charge_reference(batch.payment), pay=True)
    with locking.transaction():
        locked_batch = locking.lock_one(Batch.objects.filter(pk=batch.pk))
        payment = locking.lock_one(Payment.objects.filter(batch=batch))
        attempt = locking.lock_one(PaymentAttempt.objects.filter(pk=attempt.pk))
        services.attempt_apply_success(locked_batch, payment, attempt)


def test_starting_an_attempt_with_a_slow_gateway_holds_no_lock(transactional_db, placed_batch, blocking_provider):
    batch = placed_batch()

    def start():
        return services.attempt_start(
            payment_reference=batch.payment.reference, provider_name="blocking", method="page", client_ip="127.0.0.1"
        )

    with running_in_a_thread(start) as outcome:
        assert blocking_provider.entered.wait(timeout=10)
        lock_everything_within_a_second(batch)
        # The attempt was recorded before the gateway was asked.
        assert PaymentAttempt.objects.get(payment__batch=batch).status == PaymentAttempt.Status.OPEN
        blocking_provider.release.set()

    assert outcome["value"].redirect_url.startswith("http")


def test_closing_an_attempt_at_a_slow_gateway_holds_no_lock(transactional_db, placed_batch, blocking_provider):
    batch = placed_batch()
    attempt = open_attempt(batch.payment)
    order_services.batch_cancel(batch_id=batch.pk, owner=batch.owner)  # closes the attempt here; the rail next
    use_provider(batch, blocking_provider)

    with running_in_a_thread(lambda: services.attempt_close_at_rail(attempt_id=attempt.pk)) as outcome:
        assert blocking_provider.entered.wait(timeout=10)
        lock_everything_within_a_second(batch)
        blocking_provider.release.set()

    assert outcome["value"] == "closed at the rail"
    assert gateway.SandboxCharge.objects.get(merchant_reference=attempt.reference).status == "closed"


def test_asking_a_slow_gateway_for_a_refund_holds_no_lock(transactional_db, placed_batch, blocking_provider):
    batch = placed_batch()
    pay(batch)
    use_provider(batch, blocking_provider)
    order = batch.orders.first()
    refund = services.payment_refund_order(order=order, reason="test")
    request = services.refunds_group(
        attempt_id=refund.attempt_id, now=timezone.now() + timedelta(minutes=5), requeue=False
    )

    with running_in_a_thread(lambda: services.refund_request_send(request_id=request.pk)) as outcome:
        assert blocking_provider.entered.wait(timeout=10)
        lock_everything_within_a_second(batch)
        # The request was recorded before the gateway was asked: a crash now would leave it to be asked again.
        assert Refund.objects.get(order=order).status == Refund.Status.PENDING
        blocking_provider.release.set()

    assert outcome["value"].provider_reference


def test_refunding_a_late_success_through_a_slow_gateway_holds_no_lock(
    transactional_db, placed_batch, blocking_provider
):
    batch = placed_batch()
    attempt = open_attempt(batch.payment)
    order_services.batch_cancel(batch_id=batch.pk, owner=batch.owner)
    with mock.patch("payments.sandbox.gateway.queue_task"):  # its notification is applied below instead
        gateway.charge_decide(charge_reference=charge_of(attempt), pay=True)  # paid after the shop cancelled
    use_provider(batch, blocking_provider)
    late_success = Notification(
        event_id="evt_late",
        type="payment.succeeded",
        reference=attempt.reference,
        amount=attempt.amount,
        currency=attempt.currency,
    )

    # Applying the news asks no gateway: the refund is recorded and its request queued for a worker.
    outcome = services.notification_apply(provider_name="blocking", notification=late_success)
    assert outcome == "not applied: payment was cancelled; refunding 60.00"
    assert not blocking_provider.entered.is_set()

    request = RefundRequest.objects.get(payment=batch.payment)
    with running_in_a_thread(lambda: services.refund_request_send(request_id=request.pk)):  # the worker's task
        assert blocking_provider.entered.wait(timeout=10)
        lock_everything_within_a_second(batch)
        assert Refund.objects.get(payment=batch.payment).status == Refund.Status.PENDING
        blocking_provider.release.set()

    assert Refund.objects.get(payment=batch.payment).provider_reference


def test_reconciling_with_a_slow_gateway_holds_no_lock(transactional_db, placed_batch, blocking_provider):
    batch = placed_batch()
    open_attempt(batch.payment)
    use_provider(batch, blocking_provider)

    with running_in_a_thread(lambda: services.payment_reconcile(payment_id=batch.payment.pk)) as outcome:
        assert blocking_provider.entered.wait(timeout=10)
        lock_everything_within_a_second(batch)
        blocking_provider.release.set()

    assert outcome["value"] == "gateway says open"


def test_the_lock_check_itself_notices_a_lock_held_elsewhere(transactional_db, placed_batch):
    """The helper above must be able to fail: a lock held by another transaction makes it time out."""
    batch = placed_batch()
    holding, done = threading.Event(), threading.Event()

    def hold_the_batch():
        with locking.transaction():
            locking.lock_one(Batch.objects.filter(pk=batch.pk))
            holding.set()
            done.wait(timeout=30)

    with running_in_a_thread(hold_the_batch):
        assert holding.wait(timeout=10)
        try:
            with pytest.raises(Exception, match="lock timeout"):
                lock_everything_within_a_second(batch)
        finally:
            done.set()
