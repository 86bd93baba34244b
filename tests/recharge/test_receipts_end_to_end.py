"""Receipts sent by the real worker after a real payment at the sandbox gateway: each once, in the language the
batch was submitted in. The worker's mail goes to files (tests/conftest.py, `worker_mail`)."""

import pytest

from orders.models import Receipt
from payments.models import Payment
from tests.payments.sandbox import gateway_path


@pytest.fixture
def site(live_server, worker):
    return live_server


def test_the_worker_sends_both_receipts_once_in_the_shoppers_language(
    site, user, api_client, client, wait_for_batch, wait_until, wait_for_idle_worker, worker_mail
):
    rows = [
        {"kind": "mobile", "phone": "13800138000", "face_value": "50"},
        {"kind": "mobile", "phone": "13800000000", "face_value": "20"},  # ...0000: refused upstream, refunded
    ]
    response = api_client.post("/api/v1/batches/", {"rows": rows}, format="json", HTTP_ACCEPT_LANGUAGE="zh-CN")
    batch = wait_for_batch(response.json()["id"])

    client.post(gateway_path(Payment.objects.get(batch=batch)), {"decision": "pay"})

    wait_until(lambda: len(worker_mail()) >= 2, timeout=90, what="both receipts")
    wait_for_idle_worker()
    paid, settled = worker_mail()
    assert [paid["To"], settled["To"]] == [user.email, user.email]
    assert paid["Subject"].strip() == "Batchpay：已收到 2 笔订单的付款"
    assert "我们已收到您为 2 笔订单支付的 ¥69.30。" in paid.get_content()
    assert settled["Subject"].strip() == "Batchpay：您的 2 笔订单已全部完成"
    body = settled.get_content()
    assert "已充值或已交付：" in body and "13800138000 · ¥50（中国移动 · 北京市）" in body
    assert "原因：充值服务商多次尝试后仍未能为该账户充值。" in body
    assert "已付 ¥69.30 · 已退款 ¥19.80 · 实付 ¥49.50" in body
    assert Receipt.objects.filter(batch=batch, sent_at__isnull=False).count() == 2
