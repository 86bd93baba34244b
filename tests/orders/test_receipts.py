"""Receipts by e-mail: one when a batch is paid, one when every order that had work to do after payment has
ended, each in the shopper's language, each once. Rendering and the once-only logic run here, in the test's
process (Django's in-memory outbox); tests/recharge/test_receipts_end_to_end.py sends them through the worker."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from orders.models import Order, OutboxMessage, Receipt
from orders.services import receipts
from tests.orders.factories import ProductFactory
from tests.orders.flows import batch_paid, batch_placed, refunds_confirmed, top_ups_run

ROWS = [
    {"kind": "goods", "sku": "TSHIRT-M", "quantity": 2},
    {"kind": "mobile", "phone": "13800138000", "face_value": "50"},
    {"kind": "mobile", "phone": "13800000000", "face_value": "20"},  # ...0000: the upstream always refuses it
]


@pytest.fixture(autouse=True)
def catalogue(db, carrier_discounts):
    ProductFactory(sku="TSHIRT-M", name="T-shirt M", unit_price=Decimal("59.00"))


def numbers(batch) -> list[str]:
    return list(Order.objects.filter(batch=batch).order_by("row_index").values_list("number", flat=True))


def sent_to_the_worker(kind) -> int:
    return OutboxMessage.objects.filter(task=receipts.SEND_TASK, args__1=kind).count()


def test_the_payment_receipt_lists_what_was_paid(user, settings):
    batch = batch_placed(user, ROWS)
    payment = batch_paid(batch)

    # due in the payment's transaction, its sending promised in the outbox
    assert Receipt.objects.filter(batch=batch, kind="paid").count() == 1
    assert sent_to_the_worker("paid") == 1
    assert receipts.receipt_send(batch_id=batch.pk, kind="paid") == "sent"

    [message] = mail.outbox
    one, two, three = numbers(batch)
    assert message.to == [user.email]
    assert message.subject == "Batchpay: Payment received for 3 orders"
    placed = timezone.localtime(batch.created_at).strftime("%Y-%m-%d %H:%M")
    assert message.body == (
        f"Hello {user.username},\n"
        "\n"
        "we received your payment of ¥187.30 for 3 orders.\n"
        f"Payment reference: {payment.reference}\n"
        f"Placed: {placed}\n"
        "\n"
        f"{one}  Goods: T-shirt M × 2  ¥118.00\n"
        f"{two}  Mobile top-up: 13800138000 · ¥50 (China Mobile · Beijing)  ¥49.50\n"
        f"{three}  Mobile top-up: 13800000000 · ¥20 (China Mobile · Beijing)  ¥19.80\n"
        "\n"
        "Total paid: ¥187.30\n"
        "\n"
        f"Follow your orders: {settings.SITE_URL}/batches/{batch.pk}/\n"
    )


def test_the_completion_receipt_says_what_was_topped_up_and_what_was_refunded_and_why(user, settings):
    batch = batch_placed(user, ROWS)
    batch_paid(batch)
    receipts.receipt_send(batch_id=batch.pk, kind="paid")

    top_ups_run(batch)
    # the top-ups have ended, but the refund of the failed one has not arrived: not complete yet
    assert not Receipt.objects.filter(batch=batch, kind="settled").exists()
    refunds_confirmed(batch)

    assert Receipt.objects.filter(batch=batch, kind="settled").count() == 1
    assert receipts.receipt_send(batch_id=batch.pk, kind="settled") == "sent"
    message = mail.outbox[-1]
    one, two, three = numbers(batch)
    placed = timezone.localtime(batch.created_at).strftime("%Y-%m-%d %H:%M")
    assert message.subject == "Batchpay: Your 3 orders are complete"
    assert message.body == (
        f"Hello {user.username},\n"
        "\n"
        f"every order you placed on {placed} has reached its end.\n"
        "\n"
        "Topped up or delivered:\n"
        f"  {two}  Mobile top-up: 13800138000 · ¥50 (China Mobile · Beijing)  ¥49.50\n"
        "\n"
        "Paid:\n"
        f"  {one}  Goods: T-shirt M × 2  ¥118.00\n"
        "\n"
        "Refunded:\n"
        f"  {three}  Mobile top-up: 13800000000 · ¥20 (China Mobile · Beijing)  ¥19.80\n"
        "    Why: The top-up provider could not top up this account, after several attempts.\n"
        "\n"
        "Paid ¥187.30 · refunded ¥19.80 · net ¥167.50\n"
        "Refunds go back to the account you paid with; your bank may take a few days to show them.\n"
        "\n"
        f"Your orders: {settings.SITE_URL}/batches/{batch.pk}/\n"
    )


def test_receipts_are_written_in_the_language_the_batch_was_submitted_in(user):
    batch = batch_placed(user, ROWS, language="zh-hans")
    batch_paid(batch)
    top_ups_run(batch)
    refunds_confirmed(batch)

    receipts.receipt_send(batch_id=batch.pk, kind="paid")
    receipts.receipt_send(batch_id=batch.pk, kind="settled")

    paid, settled = mail.outbox
    assert paid.subject == "Batchpay：已收到 3 笔订单的付款"
    assert "我们已收到您为 3 笔订单支付的 ¥187.30。" in paid.body
    assert "话费充值：13800138000 · ¥50（中国移动 · 北京市）  ¥49.50" in paid.body
    assert settled.subject == "Batchpay：您的 3 笔订单已全部完成"
    assert "已退款：" in settled.body
    assert "原因：充值服务商多次尝试后仍未能为该账户充值。" in settled.body
    assert "已付 ¥187.30 · 已退款 ¥19.80 · 实付 ¥167.50" in settled.body


def test_each_receipt_is_sent_once_however_often_it_is_found_due(user):
    batch = batch_placed(user, ROWS[1:2])
    batch_paid(batch)
    top_ups_run(batch)

    # the last order ended: found due once, and not again
    assert Receipt.objects.filter(batch=batch).count() == 2
    assert not receipts.batch_settle_check(batch_id=batch.pk)
    assert sent_to_the_worker("settled") == 1
    # the database refuses a second record of the same receipt
    with pytest.raises(IntegrityError), transaction.atomic():
        Receipt.objects.create(batch=batch, kind="settled", recipient=user.email)

    # the task delivered twice sends once
    for _ in range(2):
        receipts.receipt_send(batch_id=batch.pk, kind="paid")
        receipts.receipt_send(batch_id=batch.pk, kind="settled")
    assert [message.subject for message in mail.outbox] == [
        "Batchpay: Payment received for 1 order",
        "Batchpay: Your order is complete",
    ]


def test_a_batch_whose_orders_end_with_the_payment_gets_only_the_payment_receipt(user):
    batch = batch_placed(user, ROWS[:1])
    batch_paid(batch)

    assert list(Receipt.objects.filter(batch=batch).values_list("kind", flat=True)) == ["paid"]


def test_the_completion_receipt_waits_for_the_payment_receipt(user):
    batch = batch_placed(user, ROWS[1:2])
    batch_paid(batch)
    top_ups_run(batch)

    with pytest.raises(receipts.ReceiptNotReady):
        receipts.receipt_send(batch_id=batch.pk, kind="settled")
    assert mail.outbox == []


def test_a_receipt_being_sent_by_another_worker_is_left_to_it_until_its_claim_expires(user):
    batch = batch_placed(user, ROWS[:1])
    batch_paid(batch)
    Receipt.objects.filter(batch=batch).update(claimed_at=timezone.now())

    with pytest.raises(receipts.ReceiptNotReady):
        receipts.receipt_send(batch_id=batch.pk, kind="paid")

    # that worker died: after the claim expires, the receipt goes out
    Receipt.objects.filter(batch=batch).update(claimed_at=timezone.now() - receipts.CLAIM_TIMEOUT - timedelta(1))
    assert receipts.receipt_send(batch_id=batch.pk, kind="paid") == "sent"
    assert len(mail.outbox) == 1


def test_a_mail_server_that_fails_leaves_the_receipt_to_be_sent_again(user, settings):
    settings.EMAIL_BACKEND = "tests.orders.test_receipts.RefusingBackend"
    batch = batch_placed(user, ROWS[:1])
    batch_paid(batch)

    with pytest.raises(OSError):
        receipts.receipt_send(batch_id=batch.pk, kind="paid")

    receipt = Receipt.objects.get(batch=batch)
    assert (receipt.sent_at, receipt.claimed_at, receipt.attempts) == (None, None, 1)
    assert receipt.last_error == "connection refused"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert receipts.receipt_send(batch_id=batch.pk, kind="paid") == "sent"


def test_a_shopper_without_an_address_gets_no_receipt(user):
    user.email = ""
    user.save()
    batch = batch_placed(user, ROWS[:1])
    batch_paid(batch)

    assert not Receipt.objects.exists()


class RefusingBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("connection refused")


@pytest.fixture
def tasks_run_eagerly():
    """`./run start` without any Redis: every task runs inside the web process as its commit publishes it."""
    from config.celery import app as celery_app

    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.mark.django_db(transaction=True)
def test_without_a_broker_both_receipts_still_go_out(user, carrier_discounts, tasks_run_eagerly):
    batch = batch_placed(user, ROWS[1:2])

    batch_paid(batch, at_the_gateway=False)

    # the top-up ran (and ended) before the payment receipt's turn came: the completion receipt did not wait
    assert sorted(message.subject for message in mail.outbox) == [
        "Batchpay: Payment received for 1 order",
        "Batchpay: Your order is complete",
    ]
    assert Receipt.objects.filter(batch=batch, sent_at__isnull=False).count() == 2
