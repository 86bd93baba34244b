"""A top-up provider that takes its time holds up nobody: while it works, the order and its fulfilment can be
locked by anyone else within a second."""

import pytest
from django.db import connection

from orders import locking, selectors, services
from orders.models import Order
from recharge import services as recharge_services
from recharge import upstream
from recharge.models import Fulfilment
from recharge.upstream import SandboxUpstream
from tests.payments.test_gateway_calls_outside_locks import BlockingProvider, running_in_a_thread


class BlockingUpstream(SandboxUpstream):
    name = "blocking"

    def __init__(self):
        self.gate = BlockingProvider()  # the same enter/release events

    def top_up(self, **call):
        self.gate._block()
        return super().top_up(**call)


@pytest.fixture
def paid_top_up(transactional_db, user, carrier_discounts):
    batch = services.batch_submit(
        owner=user, rows=[{"kind": "mobile", "phone": "13912345678", "face_value": "50"}]
    ).batch
    services.order_place(batch_id=batch.pk, row_index=0)
    services.batch_finalize(batch_id=batch.pk, results=selectors.batch_results_from_database(batch))
    # Paid and fulfilling, as the payment's notification leaves it, but with no fulfilment task queued:
    # this test drives the top-up itself.
    Order.objects.filter(batch=batch).update(status=Order.Status.FULFILLING)
    order = Order.objects.get(batch=batch)
    Fulfilment.objects.create(order=order)
    return order


def test_a_slow_top_up_holds_no_lock_on_the_order_or_its_fulfilment(paid_top_up, monkeypatch, settings):
    slow = BlockingUpstream()
    monkeypatch.setitem(upstream._PROVIDERS, slow.name, slow)
    settings.RECHARGE_UPSTREAM = slow.name

    with running_in_a_thread(lambda: recharge_services.fulfilment_attempt(order_id=paid_top_up.pk)) as outcome:
        assert slow.gate.entered.wait(timeout=10)
        with locking.transaction():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '1s'")
            locking.lock_one(Order.objects.filter(pk=paid_top_up.pk))
            fulfilment = locking.lock_one(Fulfilment.objects.filter(order=paid_top_up))
            assert fulfilment.status == Fulfilment.Status.IN_PROGRESS  # the attempt was recorded first
        slow.gate.release.set()

    assert outcome["value"] == "topped up"
    assert Order.objects.get(pk=paid_top_up.pk).status == Order.Status.FULFILLED
