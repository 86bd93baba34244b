"""The payment's admin page with a merged payment of 5,000 orders: short and fast, each share one click away."""

import re
from decimal import Decimal

import pytest

from orders.models import Batch, Order
from payments.models import Payment, PaymentAllocation, PaymentAttempt, Refund
from tests.factories import UserFactory
from tests.payments.factories import PaymentAttemptFactory

ORDERS = 5000


@pytest.fixture
def staff_client(client, db):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def big_payment(user):
    batch = Batch.objects.create(
        owner=user, row_count=ORDERS, accepted_rows=ORDERS, status=Batch.Status.AWAITING_PAYMENT
    )
    orders = Order.objects.bulk_create(
        Order(owner=user, batch=batch, row_index=i, kind="goods", unit_price="1.25", amount="1.25")
        for i in range(ORDERS)
    )
    payment = Payment.objects.create(
        batch=batch, owner=user, amount=Decimal("1.25") * ORDERS, status=Payment.Status.SUCCEEDED
    )
    PaymentAllocation.objects.bulk_create(
        PaymentAllocation(payment=payment, order=order, amount=order.amount) for order in orders
    )
    attempt = PaymentAttemptFactory(payment=payment, status=PaymentAttempt.Status.SUCCEEDED)
    Refund.objects.create(
        payment=payment, attempt=attempt, order=orders[7], amount="1.25", status=Refund.Status.SUCCEEDED
    )
    Refund.objects.create(
        payment=payment, attempt=attempt, order=orders[8], amount="1.25", status=Refund.Status.PENDING
    )
    return payment


def test_the_page_of_a_5000_order_payment_summarises_the_orders_instead_of_listing_them(
    staff_client, big_payment, django_assert_max_num_queries
):
    with django_assert_max_num_queries(12):
        page = staff_client.get(f"/admin/payments/payment/{big_payment.pk}/change/")

    html = page.content.decode()
    assert page.status_code == 200
    assert len(page.content) < 40_000  # an inline of every allocation made it 4.6 MB from 5,010 queries
    assert "5000 orders, 6250.00 CNY in all" in html
    assert "1 pending (1.25), 1 succeeded (1.25)" in html
    first_order = Order.objects.get(batch=big_payment.batch, row_index=0)
    assert first_order.number not in html
    link = re.search(r'<a href="([^"]+)" id="payment-allocations">', html).group(1)
    assert link == f"/admin/payments/paymentallocation/?payment__id__exact={big_payment.pk}"
    refunds = re.search(r'<a href="([^"]+)" id="payment-refunds">', html).group(1)
    assert refunds == f"/admin/payments/refund/?payment__id__exact={big_payment.pk}"
    assert "2 refunds" in staff_client.get(refunds).content.decode()


def test_each_orders_share_is_in_a_paged_list_of_the_payments_allocations(
    staff_client, big_payment, django_assert_max_num_queries
):
    other = UserFactory()
    other_batch = Batch.objects.create(owner=other, row_count=1, accepted_rows=1)
    other_order = Order.objects.create(
        owner=other, batch=other_batch, row_index=0, kind="goods", unit_price=9, amount=9
    )
    other_payment = Payment.objects.create(batch=other_batch, owner=other, amount=9)
    PaymentAllocation.objects.create(payment=other_payment, order=other_order, amount=9)
    url = f"/admin/payments/paymentallocation/?payment__id__exact={big_payment.pk}"

    with django_assert_max_num_queries(12):
        page = staff_client.get(url)

    html = page.content.decode()
    assert page.status_code == 200
    assert len(page.content) < 150_000
    shown = re.findall(r'<a href="/admin/orders/order/\d+/change/">(\d+)</a>', html)
    assert len(shown) == 100
    first_two = Order.objects.filter(batch=big_payment.batch, row_index__lt=2).order_by("row_index")
    assert shown[:2] == [order.number for order in first_two]
    assert other_order.number not in html
    assert "p=49" in html  # 5,000 orders, 100 a page: the last page is 49 (counted from 0)


def test_staff_cannot_change_or_delete_an_allocation(staff_client, big_payment):
    allocation = big_payment.allocations.first()

    page = staff_client.get(f"/admin/payments/paymentallocation/{allocation.pk}/change/")

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert staff_client.get(f"/admin/payments/paymentallocation/{allocation.pk}/delete/").status_code == 403


def test_the_payment_page_lists_its_attempts_read_only_with_the_flag_and_nothing_secret(staff_client, big_payment):
    paid_twice = PaymentAttemptFactory(
        payment=big_payment,
        provider="sandbox",
        status=PaymentAttempt.Status.UNHONOURED,
        needs_attention=True,
        attention_note="Paid again on another attempt",
        redirect_url="http://127.0.0.1:8000/gateway/sandbox/pay/ch_secret-looking/",
        qr_text="weixin://wxpay/bizpayurl?pr=not-for-staff",
    )

    html = staff_client.get(f"/admin/payments/payment/{big_payment.pk}/change/").content.decode()

    assert paid_twice.reference in html and "Paid again on another attempt" in html
    assert "paid, not honoured" in html
    assert "ch_secret-looking" not in html and "not-for-staff" not in html
    assert 'name="attempts-0-status"' not in html  # read-only: shown, not editable
    flagged = staff_client.get("/admin/payments/paymentattempt/?needs_attention__exact=1").content.decode()
    assert paid_twice.reference in flagged
