"""What staff see of a fulfilment and what they can do with it: counters that agree with the attempt log, and a
retry for the one case a failed top-up is left to them (its automatic refund was refused)."""

import re
from decimal import Decimal

import pytest

from orders.models import Order
from payments.models import Refund
from payments.providers import ProviderError, SandboxProvider
from recharge import services
from recharge.models import Fulfilment, UpstreamAttempt
from recharge.upstream import SandboxUpstream
from tests.factories import UserFactory
from tests.orders.factories import ProductFactory
from tests.orders.flows import batch_paid, batch_placed, refunds_confirmed, refunds_requested, top_ups_run


@pytest.fixture
def staff_client(client, db):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def paid_top_up(user, phone, *, at_the_gateway=True):
    """A paid top-up order, its fulfilment started. Not paid `at_the_gateway`, its refund is refused there."""
    batch = batch_placed(user, [{"kind": "mobile", "phone": phone, "face_value": "50"}])
    batch_paid(batch, at_the_gateway=at_the_gateway)
    return Order.objects.get(batch=batch)


def readonly_value(html: str, label: str) -> str:
    """The value the admin shows beside a read-only field's label."""
    match = re.search(rf">{label}:</label>\s*<div class=\"readonly\">([^<]*)</div>", html)
    assert match, f"no read-only field {label!r} on the page"
    return match.group(1)


def test_a_fulfilment_settled_by_a_status_query_shows_one_query(user, staff_client):
    order = paid_top_up(user, "13900000002")  # ...0002: times out once, a query then finds it topped up

    top_ups_run(order.batch)

    fulfilment = Fulfilment.objects.get(order=order)
    log = list(fulfilment.upstream_attempts.values_list("call", "outcome"))
    assert log == [("top_up", "unknown"), ("query", "success")]
    assert (fulfilment.attempts, fulfilment.queries) == (1, 1)
    html = staff_client.get(f"/admin/recharge/fulfilment/{fulfilment.pk}/change/").content.decode()
    assert readonly_value(html, "Top-up attempts") == "1"
    assert readonly_value(html, "Status queries") == "1"
    assert f"Fulfilment of order {order.number}" in html
    assert f"query for order {order.number}: success" in html  # the log's rows, named by the order number


def test_a_top_up_is_in_the_log_from_the_moment_it_starts(user, monkeypatch):
    order = paid_top_up(user, "13800138000")

    class WorkerDied(Exception):
        pass

    def dies(*args, **kwargs):
        raise WorkerDied

    # the worker dies while the upstream is being called
    monkeypatch.setattr(SandboxUpstream, "top_up", dies)
    with pytest.raises(WorkerDied):
        services.fulfilment_attempt(order_id=order.pk)

    # the attempt it made is counted and in the log, without an answer
    fulfilment = Fulfilment.objects.get(order=order)
    assert fulfilment.attempts == 1
    assert list(fulfilment.upstream_attempts.values_list("call", "outcome")) == [("top_up", "")]


@pytest.fixture
def one_attempt(settings):
    settings.RECHARGE_MAX_ATTEMPTS = 1


def test_staff_retry_a_failed_top_up_whose_refund_was_refused_and_it_goes_through(user, staff_client, one_attempt):
    # given: a number the upstream refuses once (…0001), with one attempt allowed, and a gateway that refuses
    # the automatic refund
    order = paid_top_up(user, "13900000001", at_the_gateway=False)
    top_ups_run(order.batch)
    refunds_requested(order.batch)
    fulfilment = Fulfilment.objects.get(order=order)
    assert fulfilment.status == Fulfilment.Status.FAILED
    assert list(Refund.objects.filter(order=order).values_list("status", flat=True)) == ["failed"]
    assert services.fulfilments_to_refund() == []  # refused: left to staff, not refunded again and again
    assert Order.objects.get(pk=order.pk).status == Order.Status.FULFILLING  # unsettled: staff must act
    listed = staff_client.get("/admin/recharge/fulfilment/?needs_staff=yes").content.decode()
    assert order.number in listed

    # when: staff retry it from the admin
    response = staff_client.post(
        "/admin/recharge/fulfilment/",
        {"action": "retry", "_selected_action": [fulfilment.pk]},
        follow=True,
    )

    assert f"{order.number}: top-up retried" in response.content.decode()
    top_ups_run(order.batch)
    fulfilment.refresh_from_db()
    assert fulfilment.status == Fulfilment.Status.SUCCEEDED
    assert Order.objects.get(pk=order.pk).status == Order.Status.FULFILLED
    # the counters went on counting: two attempts, both in the log
    assert (fulfilment.attempts, fulfilment.extra_attempts) == (2, 1)
    assert list(fulfilment.upstream_attempts.values_list("outcome", flat=True)) == ["failure", "success"]
    assert not Refund.objects.filter(order=order).exclude(status="failed").exists()


def test_a_retried_top_up_that_fails_for_good_again_is_refunded_again(user, one_attempt, monkeypatch):
    order = paid_top_up(user, "13800000000")  # ...0000: always refused
    # the gateway refuses the first automatic refund (a misconfigured account, say)
    with monkeypatch.context() as patched:
        patched.setattr(SandboxProvider, "refund", refuses)
        top_ups_run(order.batch)
        refunds_requested(order.batch)
    assert list(Refund.objects.filter(order=order).values_list("status", flat=True)) == ["failed"]

    services.fulfilment_retry(order_id=order.pk, by="staff")
    top_ups_run(order.batch)

    assert Fulfilment.objects.get(order=order).attempts == 2
    assert list(Refund.objects.filter(order=order).values_list("status", flat=True)) == ["pending", "failed"]
    refunds_confirmed(order.batch)
    assert Order.objects.get(pk=order.pk).status == Order.Status.REFUNDED


def refuses(self, refund, *, notify_url):
    raise ProviderError("this merchant account may not refund")


def test_retry_is_refused_while_a_refund_is_under_way(user, one_attempt):
    order = paid_top_up(user, "13800000000")
    top_ups_run(order.batch)
    assert Refund.objects.get(order=order).status == Refund.Status.PENDING

    with pytest.raises(services.FulfilmentError) as refused:
        services.fulfilment_retry(order_id=order.pk)

    assert str(refused.value) == "Only a failed top-up whose refund was refused can be retried; this one is refunded."


def test_a_refund_after_a_retry_is_not_recorded(user, one_attempt):
    order = paid_top_up(user, "13900000001", at_the_gateway=False)
    top_ups_run(order.batch)
    refunds_requested(order.batch)
    services.fulfilment_retry(order_id=order.pk)

    # the refund job comes round for the failure that was just retried
    services.fulfilment_refund(order_id=order.pk)

    # only the refusal from before the retry: no refund of a top-up that is being tried again
    assert list(Refund.objects.filter(order=order).values_list("status", flat=True)) == ["failed"]
    assert Fulfilment.objects.get(order=order).status == Fulfilment.Status.PENDING


def test_an_unanswered_call_reads_so_in_the_admin(user, staff_client):
    order = paid_top_up(user, "13800138000")
    fulfilment = Fulfilment.objects.get(order=order)
    UpstreamAttempt.objects.create(fulfilment=fulfilment, call="top_up")

    html = staff_client.get(f"/admin/recharge/fulfilment/{fulfilment.pk}/change/").content.decode()

    assert "no answer recorded" in html
    assert "UpstreamAttempt object" not in html


def test_admin_lists_name_kinds_as_people_read_them(staff_client, user):
    ProductFactory(sku="MUG", name="Mug", unit_price=Decimal("5.00"))
    batch = batch_placed(
        user, [{"kind": "goods", "sku": "MUG"}, {"kind": "mobile", "phone": "13800138000", "face_value": "50"}]
    )
    payment_id = batch.payment.pk

    pages = {
        "orders": staff_client.get("/admin/orders/order/").content.decode(),
        "rows": staff_client.get("/admin/orders/batchrow/").content.decode(),
        "shares": staff_client.get(
            f"/admin/payments/paymentallocation/?payment__id__exact={payment_id}"
        ).content.decode(),
        "products": staff_client.get("/admin/orders/product/").content.decode(),
    }

    for name, html in pages.items():
        assert ">Goods<" in html, name
        assert ">goods<" not in html, name
    for name in ("orders", "rows", "shares"):
        assert ">Mobile top-up<" in pages[name] and ">mobile<" not in pages[name], name
    # the kind filter offers names too
    assert "?kind=mobile" in pages["orders"] and ">Mobile top-up</a>" in pages["orders"]
