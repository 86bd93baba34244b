"""The WeChat Pay rail against the fake WeChat Pay (tests/payments/fakes/wechat.py), at the provider level: every call
goes over HTTP, signed with our merchant key, and every answer is verified with the fake's key."""

import json
import logging
import secrets
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from payments.providers import (
    GatewayState,
    InvalidNotification,
    ProviderError,
    ProviderUnavailable,
    get_provider,
)
from payments.rails import wechat
from payments.rails.wechat import WeChatPayProvider
from tests.payments.fakes.wechat import SHANGHAI, FakeWeChatPay, wechat_pay_fake

NOTIFY_URL = "https://shop.example.com/payments/webhooks/wechat/"


@pytest.fixture
def fake(settings):
    with wechat_pay_fake(settings) as running:
        yield running


@pytest.fixture
def provider() -> WeChatPayProvider:
    registered = get_provider("wechat")
    assert isinstance(registered, WeChatPayProvider)
    return registered


def an_attempt(method: str = "native", amount: str = "20.00", **extra: Any) -> Any:
    """Stands in for the core's PaymentAttempt, with the attributes the contract gives it."""
    return SimpleNamespace(
        reference="pa" + secrets.token_hex(12),
        amount=Decimal(amount),
        currency="CNY",
        method=method,
        expires_at=timezone.now() + timedelta(minutes=30),
        transaction_id="",
        **extra,
    )


def a_refund(attempt: Any, amount: str, reason: str = "top-up failed") -> Any:
    reference = "rf" + secrets.token_hex(12)
    return SimpleNamespace(reference=reference, amount=Decimal(amount), reason=reason, attempt=attempt)


def started(provider: WeChatPayProvider, attempt: Any) -> Any:
    provider.start(attempt, description="Batchpay", client_ip="203.0.113.7", return_url="", notify_url=NOTIFY_URL)
    return attempt


def paid(provider: WeChatPayProvider, fake: FakeWeChatPay, amount: str = "20.00") -> Any:
    attempt = started(provider, an_attempt(amount=amount))
    fake.mark_paid(attempt.reference)
    return attempt


# -- paying ---------------------------------------------------------------------------------------------------------
def test_native_start_gives_the_code_url_to_draw_as_a_qr_code(fake, provider):
    attempt = an_attempt("native", "1234.56")

    checkout = provider.start(
        attempt, description="Batchpay: 20 orders", client_ip="203.0.113.7", return_url="", notify_url=NOTIFY_URL
    )

    order = fake.orders[attempt.reference]
    assert checkout.qr_text == order.pay_url
    assert checkout.qr_text.startswith("weixin://wxpay/bizpayurl?pr=")
    assert checkout.redirect_url == ""
    assert order.total == 123456  # fen, exactly
    assert order.request["notify_url"] == NOTIFY_URL
    expected_expiry = attempt.expires_at.astimezone(SHANGHAI).replace(microsecond=0).isoformat()
    assert order.request["time_expire"] == expected_expiry
    assert order.request["time_expire"].endswith("+08:00")


def test_h5_start_sends_the_shopper_to_the_h5_url_and_back_to_our_return_url(fake, provider):
    attempt = an_attempt("h5")
    return_url = "https://shop.example.com/payments/return/pa1/?x=1"

    checkout = provider.start(
        attempt, description="Batchpay", client_ip="198.51.100.4", return_url=return_url, notify_url=NOTIFY_URL
    )

    order = fake.orders[attempt.reference]
    assert checkout.qr_text == ""
    assert checkout.redirect_url.startswith(order.pay_url + "&redirect_url=")
    assert parse_qs(urlsplit(checkout.redirect_url).query)["redirect_url"] == [return_url]
    assert order.request["scene_info"] == {"payer_client_ip": "198.51.100.4", "h5_info": {"type": "Wap"}}


def test_starting_the_same_attempt_again_gives_the_same_code_url(fake, provider):
    attempt = an_attempt()
    first = provider.start(attempt, description="Batchpay", client_ip="", return_url="", notify_url=NOTIFY_URL)
    again = provider.start(attempt, description="Batchpay", client_ip="", return_url="", notify_url=NOTIFY_URL)

    assert again == first
    assert len(fake.orders) == 1


def test_a_long_chinese_description_is_cut_to_127_bytes_on_a_character_boundary(fake, provider):
    attempt = started_with_description(provider, "批量充值" * 20)

    sent = fake.orders[attempt.reference].description
    assert len(sent.encode()) <= 127
    assert sent == "批量充值" * 10 + "批量"  # 42 characters of 3 bytes: 126 bytes


def started_with_description(provider, description):
    attempt = an_attempt()
    provider.start(attempt, description=description, client_ip="", return_url="", notify_url=NOTIFY_URL)
    return attempt


@pytest.mark.parametrize("amount", ["12.345", "0.00", "-1.00"])
def test_an_amount_that_is_not_a_positive_whole_number_of_fen_is_refused_before_calling(fake, provider, amount):
    with pytest.raises(ProviderError, match="fen"):
        started(provider, an_attempt(amount=amount))

    assert fake.received == []


# -- querying and closing -------------------------------------------------------------------------------------------
def test_query_follows_the_order_through_its_states(fake, provider):
    attempt = an_attempt()
    assert provider.query(attempt).status == GatewayState.UNKNOWN  # ORDER_NOT_EXIST
    started(provider, attempt)
    assert provider.query(attempt).status == GatewayState.OPEN  # NOTPAY
    fake.mark_paying(attempt.reference)
    assert provider.query(attempt).status == GatewayState.OPEN  # USERPAYING
    fake.mark_failed(attempt.reference)
    assert provider.query(attempt).status == GatewayState.DECLINED  # PAYERROR

    fake.mark_paid(attempt.reference)
    state = provider.query(attempt)

    assert state.status == GatewayState.PAID
    assert state.amount == Decimal("20.00")
    assert state.transaction_id == fake.orders[attempt.reference].transaction_id != ""
    provider.refund(a_refund(attempt, "5.00"), notify_url=NOTIFY_URL)
    assert provider.query(attempt).status == GatewayState.PAID  # REFUND: paid, then partly refunded


def test_close_closes_an_open_order_and_tolerates_a_closed_or_unknown_one(fake, provider):
    attempt = started(provider, an_attempt())

    provider.close(attempt)

    assert fake.orders[attempt.reference].trade_state == "CLOSED"
    assert provider.query(attempt).status == GatewayState.CLOSED
    provider.close(attempt)  # ORDER_CLOSED
    provider.close(an_attempt())  # ORDER_NOT_EXIST
    assert [r.status for r in fake.received if r.path.endswith("/close")] == [204, 400, 404]


def test_closing_a_paid_order_is_refused(fake, provider):
    attempt = paid(provider, fake)

    with pytest.raises(ProviderError, match="ORDERPAID"):
        provider.close(attempt)


# -- refunds --------------------------------------------------------------------------------------------------------
def test_a_refund_uses_our_refund_number_and_is_pending_until_the_money_moved(fake, provider):
    attempt = paid(provider, fake)
    refund = a_refund(attempt, "5.00")

    answer = provider.refund(refund, notify_url=NOTIFY_URL)

    held = fake.refunds[refund.reference]
    assert answer.provider_reference == held.refund_id
    assert answer.succeeded is False  # PROCESSING
    assert (held.amount, held.notify_url, held.order.out_trade_no) == (500, NOTIFY_URL, attempt.reference)
    assert fake.refund_requests[0]["amount"] == {"refund": 500, "total": 2000, "currency": "CNY"}
    assert provider.query_refund(refund) == "pending"
    fake.complete_refund(refund.reference)
    assert provider.query_refund(refund) == "succeeded"
    fake.complete_refund(refund.reference, "ABNORMAL")
    assert provider.query_refund(refund) == "failed"
    assert provider.query_refund(a_refund(attempt, "1.00")) == "unknown"


def test_a_refund_whose_answer_says_success_has_succeeded(settings, provider):
    with wechat_pay_fake(settings, refunds_succeed=True) as fake:
        answer = provider.refund(a_refund(paid(provider, fake), "20.00"), notify_url=NOTIFY_URL)

    assert answer.succeeded is True


def test_asking_again_with_the_same_refund_number_refunds_once(fake, provider):
    attempt = paid(provider, fake)
    refund = a_refund(attempt, "7.50")

    first = provider.refund(refund, notify_url=NOTIFY_URL)
    again = provider.refund(refund, notify_url=NOTIFY_URL)

    assert again.provider_reference == first.provider_reference
    assert list(fake.refunds) == [refund.reference]
    assert len(fake.refund_requests) == 2


@pytest.mark.parametrize(
    "status, code", [(500, "SYSTEM_ERROR"), (429, "FREQUENCY_LIMITED"), (403, "NOT_ENOUGH"), (503, "ANY")]
)
def test_a_retryable_refund_failure_is_unavailable_and_the_retry_uses_the_same_number(fake, provider, status, code):
    attempt = paid(provider, fake)
    refund = a_refund(attempt, "3.00")
    fake.fail_next_refunds(1, code=code, status=status)

    with pytest.raises(ProviderUnavailable):
        provider.refund(refund, notify_url=NOTIFY_URL)
    assert fake.refunds == {}
    answer = provider.refund(refund, notify_url=NOTIFY_URL)

    assert answer.provider_reference == fake.refunds[refund.reference].refund_id
    assert [r["out_refund_no"] for r in fake.refund_requests] == [refund.reference, refund.reference]


def test_the_51st_partial_refund_of_a_payment_is_refused(fake, provider):
    attempt = paid(provider, fake, amount="1.00")
    for _ in range(wechat.WeChatPayProvider.max_refunds_per_payment):
        provider.refund(a_refund(attempt, "0.01"), notify_url=NOTIFY_URL)

    with pytest.raises(ProviderError) as refused:
        provider.refund(a_refund(attempt, "0.01"), notify_url=NOTIFY_URL)

    assert not isinstance(refused.value, ProviderUnavailable)
    assert len(fake.refunds) == 50


def test_refunding_more_than_is_left_is_refused(fake, provider):
    attempt = paid(provider, fake)
    provider.refund(a_refund(attempt, "15.00"), notify_url=NOTIFY_URL)

    with pytest.raises(ProviderError, match="INVALID_REQUEST"):
        provider.refund(a_refund(attempt, "5.01"), notify_url=NOTIFY_URL)


# -- notifications --------------------------------------------------------------------------------------------------
def test_a_genuine_payment_notification_is_verified_decrypted_and_read(fake, provider):
    attempt = paid(provider, fake, amount="88.80")
    notification = fake.payment_notification(attempt.reference)

    parsed = provider.parse_notification(notification.headers, notification.body)

    assert parsed.event_id == notification.id
    assert parsed.type == "payment.succeeded"
    assert (parsed.reference, parsed.amount, parsed.currency) == (attempt.reference, Decimal("88.80"), "CNY")
    assert parsed.transaction_id == fake.orders[attempt.reference].transaction_id
    assert parsed.payload["resource"]["trade_state"] == "SUCCESS"
    assert "ciphertext" not in json.dumps(parsed.payload)


def test_django_request_headers_are_read_whatever_their_case(fake, provider):
    attempt = paid(provider, fake)
    notification = fake.payment_notification(attempt.reference)
    lowercase = {name.lower(): value for name, value in notification.headers.items()}

    assert provider.parse_notification(lowercase, notification.body).reference == attempt.reference


@pytest.mark.parametrize(
    "status, kind", [("SUCCESS", "refund.succeeded"), ("ABNORMAL", "refund.failed"), ("CLOSED", "refund.failed")]
)
def test_a_refund_notification_names_our_refund_number(fake, provider, status, kind):
    attempt = paid(provider, fake)
    refund = a_refund(attempt, "4.00")
    provider.refund(refund, notify_url=NOTIFY_URL)

    notification = fake.complete_refund(refund.reference, status)
    parsed = provider.parse_notification(notification.headers, notification.body)

    assert (parsed.type, parsed.reference, parsed.refund_reference) == (kind, attempt.reference, refund.reference)
    assert parsed.amount == Decimal("4.00")


@pytest.mark.parametrize(
    "forge, reason",
    [
        ("bad_signature", "did not verify"),
        ("stale_timestamp", "300 s"),
        ("wrong_mchid", "mchid"),
        ("wrong_appid", "appid"),
        ("tampered_ciphertext", "did not verify"),
        ("unknown_serial", "Wechatpay-Serial"),
    ],
)
def test_a_forged_payment_notification_is_refused(fake, provider, forge, reason):
    attempt = paid(provider, fake)
    notification = fake.payment_notification(attempt.reference, forge=forge)

    with pytest.raises(InvalidNotification, match=reason) as refused:
        provider.parse_notification(notification.headers, notification.body)

    assert refused.value.status == 400


@pytest.mark.parametrize("forge", ["bad_signature", "wrong_mchid", "tampered_ciphertext"])
def test_a_forged_refund_notification_is_refused(fake, provider, forge):
    attempt = paid(provider, fake)
    refund = a_refund(attempt, "1.00")
    provider.refund(refund, notify_url=NOTIFY_URL)
    fake.complete_refund(refund.reference)

    notification = fake.refund_notification(refund.reference, forge=forge)

    with pytest.raises(InvalidNotification):
        provider.parse_notification(notification.headers, notification.body)


def test_a_genuine_notification_with_another_amount_is_read_as_it_says_for_the_core_to_refuse(fake, provider):
    attempt = paid(provider, fake)
    notification = fake.payment_notification(attempt.reference, forge="wrong_amount")

    parsed = provider.parse_notification(notification.headers, notification.body)

    assert parsed.amount == Decimal("20.01") != attempt.amount


@pytest.mark.parametrize(
    "change",
    [
        lambda headers, body: ({k: v for k, v in headers.items() if k != "Wechatpay-Signature"}, body),
        lambda headers, body: ({**headers, "Wechatpay-Timestamp": "soon"}, body),
        lambda headers, body: ({**headers, "Wechatpay-Signature-Type": "WECHATPAY2-SM2-WITH-SM3"}, body),
        lambda headers, body: (headers, body.replace(b'"encrypt-resource"', b'"plain"')),
        lambda headers, body: (headers, b"[" * 100 + b"]" * 100),
        lambda headers, body: (headers, body + b" "),
    ],
    ids=["no-signature", "timestamp-not-a-number", "other-algorithm", "not-encrypted", "too-deep", "body-changed"],
)
def test_a_malformed_or_altered_notification_is_refused(fake, provider, change):
    notification = fake.mark_paid(started(provider, an_attempt()).reference)
    headers, body = change(notification.headers, notification.body)

    with pytest.raises(InvalidNotification) as refused:
        provider.parse_notification(headers, body)

    assert refused.value.status == 400


def test_the_answer_is_204_without_a_body_once_applied_and_a_json_failure_otherwise(provider):
    assert provider.answer(applied=True) == (204, "", b"")

    status, content_type, body = provider.answer(applied=False, message="database unavailable")

    assert (status, content_type) == (500, "application/json")
    assert json.loads(body) == {"code": "FAIL", "message": "database unavailable"}


# -- the daily bill -------------------------------------------------------------------------------------------------
def test_the_days_bill_lists_payments_and_refunds_with_an_injected_mismatch(fake, provider):
    first, second, third = (paid(provider, fake, amount) for amount in ("10.00", "20.50", "30.00"))
    refund = a_refund(second, "0.50")
    provider.refund(refund, notify_url=NOTIFY_URL)
    fake.inject_bill_mismatch(third.reference, Decimal("29.99"))
    today = timezone.now().astimezone(SHANGHAI).date()

    lines = provider.statement(today)

    payments = {line.reference: line for line in lines if line.kind == "payment"}
    assert {ref: line.amount for ref, line in payments.items()} == {
        first.reference: Decimal("10.00"),
        second.reference: Decimal("20.50"),
        third.reference: Decimal("29.99"),
    }
    assert {line.status for line in payments.values()} == {"succeeded"}
    assert payments[first.reference].transaction_id == fake.orders[first.reference].transaction_id
    [refunded] = [line for line in lines if line.kind == "refund"]
    assert (refunded.reference, refunded.refund_reference) == (second.reference, refund.reference)
    assert (refunded.amount, refunded.status) == (Decimal("0.50"), "processing")


def test_a_payment_missing_from_the_bill_and_one_we_do_not_know(fake, provider):
    attempt = paid(provider, fake)
    fake.inject_bill_mismatch(attempt.reference)  # left out
    fake.inject_bill_mismatch("pa" + "0" * 24, Decimal("9.90"))

    [line] = provider.statement(timezone.now().astimezone(SHANGHAI).date())

    assert (line.reference, line.amount, line.kind) == ("pa" + "0" * 24, Decimal("9.90"), "payment")


def test_a_day_without_payments_has_an_empty_bill(fake, provider):
    assert provider.statement(timezone.now().astimezone(SHANGHAI).date() - timedelta(days=3)) == []


def test_a_bill_whose_hash_does_not_match_is_not_trusted(fake, provider, monkeypatch):
    paid(provider, fake)
    real_bill = fake.bill
    monkeypatch.setattr(fake, "bill", lambda day: real_bill(day))
    monkeypatch.setattr(fake, "_bills", TamperedBills())

    with pytest.raises(ProviderUnavailable, match="hash"):
        provider.statement(timezone.now().astimezone(SHANGHAI).date())


def test_bill_columns_are_found_by_name_in_any_order():
    bill = (
        "商户订单号,交易状态,微信订单号,总金额,商户退款单号,退款金额,退款状态,商品名称\r\n"
        '`pa1,`SUCCESS,`4200001,`12.30,`0,`0.00,`,"`tea, green"\r\n'
        "`pa1,`REFUND,`4200001,`12.30,`rf1,`2.30,`SUCCESS,`tea\r\n"
        "总交易单数,总交易额,总退款金额\r\n"
        "`2,`12.30,`2.30\r\n"
    ).encode()

    payment, refund = wechat.parse_trade_bill(bill)

    assert (payment.kind, payment.amount, payment.status, payment.refund_reference) == (
        "payment",
        Decimal("12.30"),
        "succeeded",
        "",
    )
    assert (refund.kind, refund.amount, refund.status, refund.refund_reference) == (
        "refund",
        Decimal("2.30"),
        "succeeded",
        "rf1",
    )


class TamperedBills(dict):
    """Serves each bill with one byte changed after its hash was given."""

    def get(self, key, default=None):
        bill = super().get(key, default)
        return bill.replace(b"`SUCCESS", b"`SUCCESX", 1) if bill is not None else None


# -- failures on the way --------------------------------------------------------------------------------------------
def test_an_answer_whose_signature_does_not_verify_is_not_trusted(fake, provider):
    attempt = started(provider, an_attempt())
    fake.sign_answers_with_wrong_key = True

    with pytest.raises(ProviderUnavailable, match="verified"):
        provider.query(attempt)


def test_a_request_whose_signature_is_refused_can_be_asked_again_once_the_key_is_fixed(fake, provider, settings):
    attempt = paid(provider, fake)
    refund = a_refund(attempt, "1.00")
    right_serial = settings.WECHATPAY_CERT_SERIAL_NO
    settings.WECHATPAY_CERT_SERIAL_NO = "ABCDEF0123"  # not the serial of the key the fake knows

    with pytest.raises(ProviderUnavailable, match="SIGN_ERROR"):
        provider.refund(refund, notify_url=NOTIFY_URL)
    settings.WECHATPAY_CERT_SERIAL_NO = right_serial

    assert provider.refund(refund, notify_url=NOTIFY_URL).provider_reference == fake.refunds[refund.reference].refund_id


def test_a_slow_answer_times_out_and_asking_again_gives_the_same_order(fake, provider, monkeypatch):
    monkeypatch.setattr(wechat, "TIMEOUT", (1, 0.3))
    fake.answer_delay = 1
    attempt = an_attempt()

    with pytest.raises(ProviderUnavailable, match="ReadTimeout"):
        started(provider, attempt)
    fake.answer_delay = 0
    checkout = provider.start(attempt, description="Batchpay", client_ip="", return_url="", notify_url=NOTIFY_URL)

    assert checkout.qr_text == fake.orders[attempt.reference].pay_url
    assert len(fake.orders) == 1


def test_wechat_pay_down_is_unavailable(settings, provider):
    with wechat_pay_fake(settings) as fake:
        attempt = an_attempt()
    # the fake has stopped: nothing listens on its port any more
    with pytest.raises(ProviderUnavailable, match="could not be reached"):
        started(provider, attempt)
    assert fake.orders == {}


def test_platform_certificates_are_downloaded_and_used_when_there_is_no_public_key(settings, provider):
    with wechat_pay_fake(settings, certificates=True) as fake:
        attempt = started(provider, an_attempt())
        notification = fake.mark_paid(attempt.reference)

        assert provider.query(attempt).status == GatewayState.PAID
        assert provider.parse_notification(notification.headers, notification.body).reference == attempt.reference
        assert fake.received[0].path == "/v3/certificates"


def test_nothing_secret_is_logged(fake, provider, caplog):
    caplog.set_level(logging.DEBUG)
    attempt = paid(provider, fake)
    fake.fail_next_refunds(1)
    with pytest.raises(ProviderUnavailable):
        provider.refund(a_refund(attempt, "1.00"), notify_url=NOTIFY_URL)
    forged = fake.payment_notification(attempt.reference, forge="bad_signature")
    with pytest.raises(InvalidNotification):
        provider.parse_notification(forged.headers, forged.body)

    logged = caplog.text
    assert "SYSTEM_ERROR" in logged  # what failed is logged…
    signature = forged.headers["Wechatpay-Signature"]
    for secret in (fake.apiv3_key, "PRIVATE KEY", "WECHATPAY2-SHA256-RSA2048 mchid", signature):
        assert secret not in logged  # …never a key or a signature


# -- configuration --------------------------------------------------------------------------------------------------
def test_a_complete_configuration_has_no_problem(fake, provider):
    assert provider.is_configured()
    assert provider.config_problems() == []


def test_without_any_setting_the_rail_is_off_without_complaint(settings, provider):
    for name in wechat._CREDENTIALS + wechat._PUBLIC_KEY:
        setattr(settings, name, "")

    assert not provider.is_configured()
    assert provider.config_problems() == []
    with pytest.raises(ProviderError, match="not configured"):
        started(provider, an_attempt())


def test_each_configuration_problem_is_one_line_naming_its_setting_without_the_secret(fake, provider, settings):
    private_key = settings.WECHATPAY_PRIVATE_KEY
    settings.WECHATPAY_PRIVATE_KEY = private_key.replace("MII", "XXX", 1)
    settings.WECHATPAY_APIV3_KEY = "a-secret-of-the-wrong-length"
    settings.WECHATPAY_PUBLIC_KEY_ID = ""
    settings.WECHATPAY_APPID = ""
    settings.WECHATPAY_CERT_SERIAL_NO = "not-hex"
    settings.WECHATPAY_API_BASE = "http://api.mch.weixin.qq.com"

    problems = provider.config_problems()

    assert [line.split(":")[0] for line in problems] == [
        "WECHATPAY_APPID",
        "WECHATPAY_PRIVATE_KEY",
        "WECHATPAY_CERT_SERIAL_NO",
        "WECHATPAY_APIV3_KEY",
        "WECHATPAY_PUBLIC_KEY_ID",
        "WECHATPAY_API_BASE",
    ]
    assert all("\n" not in line for line in problems)
    assert not any(secret in "".join(problems) for secret in ("a-secret-of-the-wrong-length", private_key[40:80]))
    assert not provider.is_configured()


def test_keys_may_be_paths_of_pem_files(fake, provider, settings, tmp_path):
    private_key_file = tmp_path / "apiclient_key.pem"
    private_key_file.write_text(settings.WECHATPAY_PRIVATE_KEY)
    settings.WECHATPAY_PRIVATE_KEY = str(private_key_file)

    assert provider.config_problems() == []
    assert started(provider, an_attempt()).reference in fake.orders
    settings.WECHATPAY_PUBLIC_KEY = str(tmp_path / "missing.pem")
    assert provider.config_problems() == ["WECHATPAY_PUBLIC_KEY: neither PEM text nor the path of a readable PEM file"]
