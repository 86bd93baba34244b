"""The sandbox behind the rails' interface (payments/providers.py): its charge is the attempt's, it closes,
answers queries about attempts and refunds, and gives the day's statement as a rail's bill would."""

from datetime import datetime
from decimal import Decimal

import pytest

from payments.providers import RAIL_TIME_ZONE, GatewayState, ProviderError, StatementLine, get_provider
from payments.sandbox import gateway
from payments.sandbox.models import SandboxCharge
from tests.payments.factories import PaymentAttemptFactory, RefundFactory
from tests.payments.sandbox import charge_of, start_attempt


@pytest.fixture
def sandbox():
    return get_provider("sandbox")


def test_an_attempts_charge_is_queried_closed_and_paid_by_its_reference(placed_batch, sandbox):
    attempt = start_attempt(placed_batch().payment)
    charge = SandboxCharge.objects.get(merchant_reference=attempt.reference)
    assert sandbox.query(attempt).status == GatewayState.OPEN

    gateway.charge_decide(charge_reference=charge.reference, pay=True)

    state = sandbox.query(attempt)
    assert (state.status, state.transaction_id, state.amount) == (GatewayState.PAID, charge.reference, Decimal("60"))
    sandbox.close(attempt)  # a paid charge stays paid
    assert sandbox.query(attempt).status == GatewayState.PAID


def test_closing_an_open_charge_or_one_never_seen_is_not_an_error(placed_batch, sandbox):
    payment = placed_batch().payment
    opened, unseen = start_attempt(payment), PaymentAttemptFactory(payment=payment)

    sandbox.close(opened)
    sandbox.close(opened)
    sandbox.close(unseen)

    assert sandbox.query(opened).status == GatewayState.CLOSED
    assert sandbox.query(unseen).status == GatewayState.UNKNOWN


def test_a_refund_is_acknowledged_then_confirmed_by_query_and_one_it_cannot_make_raises(placed_batch, sandbox):
    never_paid = RefundFactory(provider_reference="", requested_at=None)  # its attempt has no charge here
    with pytest.raises(ProviderError):
        sandbox.refund(never_paid, notify_url="http://127.0.0.1/payments/webhooks/sandbox/")

    payment = placed_batch().payment
    attempt = start_attempt(payment)
    gateway.charge_decide(charge_reference=charge_of(attempt), pay=True)
    refund = RefundFactory(payment=payment, attempt=attempt, order=payment.batch.orders.first(), requested_at=None)
    assert sandbox.query_refund(refund) == "unknown"

    answer = sandbox.refund(refund, notify_url="http://127.0.0.1/payments/webhooks/sandbox/")

    assert answer.provider_reference.startswith("re_") and answer.succeeded is False  # confirmed by notification
    assert sandbox.query_refund(refund) == "succeeded"


def test_the_statement_lists_the_days_payments_and_refunds(placed_batch, sandbox):
    attempt = start_attempt(placed_batch().payment)
    charge = gateway.charge_decide(charge_reference=charge_of(attempt), pay=True)
    gateway.refund_create(merchant_reference=attempt.reference, merchant_refund_reference="rfd_x", amount=Decimal("10"))
    today = datetime.now(RAIL_TIME_ZONE).date()

    assert sandbox.statement(today) == [
        StatementLine(attempt.reference, charge.reference, "payment", Decimal("60.00"), "succeeded"),
        StatementLine(attempt.reference, charge.reference, "refund", Decimal("10.00"), "refunded", "rfd_x"),
    ]
    assert sandbox.statement(today.replace(year=today.year - 1)) == []
