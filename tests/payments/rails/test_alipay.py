"""The Alipay rail against the fake gateway (tests/payments/fakes/alipay.py), at the provider level: no database,
no worker. Attempts and refunds are stand-ins carrying the attributes the contract gives them."""

from __future__ import annotations

import io
import logging
import secrets
import threading
import time
import urllib.request
import zipfile
from base64 import b64encode
from datetime import datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.utils import timezone

from payments.providers import (
    AttemptState,
    Checkout,
    GatewayState,
    InvalidNotification,
    ProviderError,
    ProviderUnavailable,
    StatementLine,
    get_provider,
)
from payments.rails.alipay import SHANGHAI, AlipayProvider, bill_lines
from tests.payments.fakes.alipay import FakeAlipay, new_rsa_key, private_pem, public_pem
from tests.support.services import free_port

RETURN_URL = "http://shop.test/payments/return/pa1/"
NOTIFY_URL = "http://shop.test/payments/webhooks/alipay/"
FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


class _AnyTradeNo(str):
    """Equal to any Alipay trade number (28 characters, letters and digits)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and len(other) == 28 and other.isalnum()

    __hash__ = str.__hash__


ANY_TRADE_NO = _AnyTradeNo()


@pytest.fixture
def provider(fake_alipay: FakeAlipay) -> AlipayProvider:
    return AlipayProvider()


def attempt(**overrides: Any) -> Any:
    values = {
        "reference": "pa" + secrets.token_hex(12),
        "provider": "alipay",
        "method": "page",
        "amount": Decimal("12.34"),
        "currency": "CNY",
        "expires_at": timezone.now() + timedelta(minutes=30),
        "transaction_id": "",
        "status": "pending",
    }
    return SimpleNamespace(**(values | overrides))


def refund_of(paid: Any, amount: str, **overrides: Any) -> Any:
    values = {"reference": "rf" + secrets.token_hex(12), "amount": Decimal(amount), "reason": "order refunded"}
    return SimpleNamespace(attempt=paid, **(values | overrides))


def start(provider: AlipayProvider, paying: Any, description: str = "Batchpay: 3 orders") -> Checkout:
    return provider.start(
        paying, description=description, client_ip="203.0.113.9", return_url=RETURN_URL, notify_url=NOTIFY_URL
    )


def opened(provider: AlipayProvider, fake: FakeAlipay, **overrides: Any) -> Any:
    """An attempt whose pay URL the shopper opened: Alipay now has a trade waiting for payment."""
    paying = attempt(**overrides)
    status, _ = fake.open(start(provider, paying).redirect_url)
    assert status == 200
    return paying


def paid(provider: AlipayProvider, fake: FakeAlipay, **overrides: Any) -> Any:
    paying = opened(provider, fake, **overrides)
    fake.pay(paying.reference)
    return paying


def form(params: dict[str, str]) -> bytes:
    return urlencode(params).encode()


# --- paying ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "api", "product_code"),
    [("page", "alipay.trade.page.pay", "FAST_INSTANT_TRADE_PAY"), ("wap", "alipay.trade.wap.pay", "QUICK_WAP_WAY")],
)
def test_start_gives_a_signed_gateway_url_that_opens_alipays_cashier(provider, fake_alipay, method, api, product_code):
    paying = attempt(method=method, amount=Decimal("12.30"))

    checkout = start(provider, paying)

    assert checkout.redirect_url.startswith(fake_alipay.url + "?") and not checkout.qr_text
    status, page = fake_alipay.open(checkout.redirect_url)
    assert status == 200 and "¥12.30" in page
    request = fake_alipay.requests[-1]
    assert (request.api, request.biz["product_code"]) == (api, product_code)
    assert request.biz["total_amount"] == "12.30"
    assert request.params["notify_url"] == NOTIFY_URL and request.params["return_url"] == RETURN_URL
    # Alipay reads both times as Beijing time, whatever the server's own time zone.
    assert fake_alipay.trades[paying.reference].time_expire == paying.expires_at.replace(microsecond=0)
    sent = datetime.strptime(request.params["timestamp"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)
    assert abs(sent - timezone.now()) < timedelta(minutes=1)


def test_the_phone_cashier_sends_a_shopper_who_gives_up_back_to_the_shop(provider, fake_alipay):
    paying = attempt(method="wap")

    fake_alipay.open(start(provider, paying).redirect_url)

    assert fake_alipay.requests[-1].biz["quit_url"] == RETURN_URL


def test_a_pay_url_changed_on_the_way_is_refused_by_the_gateway(provider, fake_alipay):
    paying = attempt(amount=Decimal("12.34"))
    url = start(provider, paying).redirect_url

    status, page = fake_alipay.open(url.replace("12.34", "0.01"))

    assert status == 400 and "isv.invalid-signature" in page
    assert paying.reference not in fake_alipay.trades


def test_the_subject_is_within_alipays_length_and_without_its_special_characters(provider, fake_alipay):
    paying = attempt()

    fake_alipay.open(start(provider, paying, description="Batchpay: a/b=c&d " + "x" * 300).redirect_url)

    subject = fake_alipay.trades[paying.reference].subject
    assert subject.startswith("Batchpay: a b c d xx") and len(subject) == 256


@pytest.mark.parametrize(
    "change",
    [{"currency": "USD"}, {"method": "native"}, {"amount": Decimal("0.001")}, {"expires_at": timezone.now()}],
)
def test_an_attempt_alipay_cannot_take_is_refused_before_any_url_is_made(provider, fake_alipay, change):
    with pytest.raises(ProviderError):
        start(provider, attempt(**change))


# --- querying and closing ----------------------------------------------------------------------------------------


def test_query_follows_the_trade_from_unknown_to_paid(provider, fake_alipay):
    paying = attempt()
    assert provider.query(paying) == AttemptState(status=GatewayState.UNKNOWN)

    fake_alipay.open(start(provider, paying).redirect_url)
    assert provider.query(paying) == AttemptState(status=GatewayState.OPEN, transaction_id=ANY_TRADE_NO)

    trade = fake_alipay.pay(paying.reference)
    assert provider.query(paying) == AttemptState(
        status=GatewayState.PAID, transaction_id=trade.trade_no, amount=Decimal("12.34")
    )


def test_query_says_closed_for_a_trade_alipay_closed(provider, fake_alipay):
    paying = opened(provider, fake_alipay)

    fake_alipay.close_trade(paying.reference)

    assert provider.query(paying).status == GatewayState.CLOSED


def test_close_closes_an_open_trade_and_tolerates_one_never_opened_or_already_closed(provider, fake_alipay):
    never_opened, waiting = attempt(), opened(provider, fake_alipay)

    provider.close(never_opened)
    provider.close(waiting)
    provider.close(waiting)

    assert never_opened.reference not in fake_alipay.trades
    assert fake_alipay.trades[waiting.reference].status == "TRADE_CLOSED"
    closes = [request.answer.get("sub_code", "") for request in fake_alipay.requests if request.api.endswith("close")]
    assert closes == ["ACQ.TRADE_NOT_EXIST", "", "ACQ.TRADE_STATUS_ERROR"]


def test_closing_a_paid_trade_is_an_error_and_leaves_it_paid(provider, fake_alipay):
    paying = paid(provider, fake_alipay)

    with pytest.raises(ProviderError, match="paid"):
        provider.close(paying)

    assert fake_alipay.trades[paying.reference].status == "TRADE_SUCCESS"


# --- refunds -----------------------------------------------------------------------------------------------------


def test_a_partial_refund_moves_money_under_our_refund_number(provider, fake_alipay):
    paying = paid(provider, fake_alipay)
    refund = refund_of(paying, "5.00")

    answer = provider.refund(refund, notify_url=NOTIFY_URL)

    assert answer.succeeded
    request = fake_alipay.refund_requests()[-1]
    assert request.biz["out_request_no"] == refund.reference and request.answer["fund_change"] == "Y"
    trade = fake_alipay.trades[paying.reference]
    assert {number: made.amount for number, made in trade.refunds.items()} == {refund.reference: Decimal("5.00")}
    assert provider.query_refund(refund) == "succeeded"


def test_asking_again_with_the_same_refund_number_refunds_once_and_still_says_succeeded(provider, fake_alipay):
    paying = paid(provider, fake_alipay)
    refund = refund_of(paying, "5.00")
    provider.refund(refund, notify_url=NOTIFY_URL)

    again = provider.refund(refund, notify_url=NOTIFY_URL)

    # fund_change=N on a repeat: the refund query confirms the money moved the first time.
    assert again.succeeded
    assert [request.answer["fund_change"] for request in fake_alipay.refund_requests()] == ["Y", "N"]
    assert fake_alipay.trades[paying.reference].refunded == Decimal("5.00")


def test_a_refund_the_gateway_failed_is_unavailable_then_succeeds_with_the_same_number(provider, fake_alipay):
    paying = paid(provider, fake_alipay)
    refund = refund_of(paying, "5.00")
    fake_alipay.fail_next_refunds(1)

    with pytest.raises(ProviderUnavailable, match=r"ACQ\.SYSTEM_ERROR"):
        provider.refund(refund, notify_url=NOTIFY_URL)
    assert provider.query_refund(refund) == "unknown"
    assert provider.refund(refund, notify_url=NOTIFY_URL).succeeded

    numbers = [request.biz["out_request_no"] for request in fake_alipay.refund_requests()]
    assert numbers == [refund.reference, refund.reference]
    assert fake_alipay.trades[paying.reference].refunded == Decimal("5.00")


def test_a_refund_beyond_what_is_left_is_refused_for_good(provider, fake_alipay):
    paying = paid(provider, fake_alipay)
    provider.refund(refund_of(paying, "10.00"), notify_url=NOTIFY_URL)

    with pytest.raises(ProviderError, match=r"ACQ\.REASON_TRADE_REFUND_FEE_ERR"):
        provider.refund(refund_of(paying, "5.00"), notify_url=NOTIFY_URL)

    assert fake_alipay.trades[paying.reference].refunded == Decimal("10.00")


@pytest.mark.parametrize(
    ("sub_code", "outcome"),
    [
        ("ACQ.SYSTEM_ERROR", ProviderUnavailable),
        ("ACQ.SELLER_BALANCE_NOT_ENOUGH", ProviderUnavailable),
        ("ACQ.TRADE_HAS_FINISHED", ProviderError),
    ],
)
def test_only_a_definitive_refusal_is_a_provider_error(provider, fake_alipay, sub_code, outcome):
    paying = paid(provider, fake_alipay)
    fake_alipay.fail_next_refunds(1, sub_code=sub_code)

    with pytest.raises(outcome, match=sub_code.replace(".", r"\.")):
        provider.refund(refund_of(paying, "1.00"), notify_url=NOTIFY_URL)


def test_a_payment_that_crossed_our_close_is_paid_and_can_be_refunded(provider, fake_alipay):
    paying = opened(provider, fake_alipay)
    provider.close(paying)

    fake_alipay.pay(paying.reference, late=True)

    assert provider.query(paying).status == GatewayState.PAID
    assert provider.refund(refund_of(paying, str(paying.amount)), notify_url=NOTIFY_URL).succeeded
    assert fake_alipay.trades[paying.reference].status == "TRADE_CLOSED"  # wholly refunded


def test_refunding_a_trade_that_was_never_paid_is_refused_for_good(provider, fake_alipay):
    with pytest.raises(ProviderError, match=r"ACQ\.TRADE_NOT_EXIST"):
        provider.refund(refund_of(attempt(), "1.00"), notify_url=NOTIFY_URL)
    with pytest.raises(ProviderError, match=r"ACQ\.TRADE_STATUS_ERROR"):
        provider.refund(refund_of(opened(provider, fake_alipay), "1.00"), notify_url=NOTIFY_URL)


@pytest.mark.parametrize("trouble", ["down", "502"])
def test_no_answer_is_unavailable_and_nothing_is_refunded(provider, fake_alipay, settings, trouble):
    paying = paid(provider, fake_alipay)
    if trouble == "down":
        settings.ALIPAY_GATEWAY = f"http://127.0.0.1:{free_port()}/gateway.do"
    else:
        fake_alipay.fail_next_requests(1, status=502)

    with pytest.raises(ProviderUnavailable):
        provider.refund(refund_of(paying, "1.00"), notify_url=NOTIFY_URL)

    assert fake_alipay.trades[paying.reference].refunded == 0


def test_a_refund_whose_answer_timed_out_is_asked_again_and_refunds_once(provider, fake_alipay, settings, wait_until):
    paying = paid(provider, fake_alipay)
    refund = refund_of(paying, "1.00")
    settings.ALIPAY_TIMEOUT_SECONDS = 0.5
    fake_alipay.stall_next_requests(1, seconds=1.5)
    began = time.monotonic()

    with pytest.raises(ProviderUnavailable, match="TimeoutError"):
        provider.refund(refund, notify_url=NOTIFY_URL)

    assert time.monotonic() - began < 1.2
    # Alipay carried it out all the same, after we stopped waiting:
    trade = fake_alipay.trades[paying.reference]
    wait_until(lambda: trade.refunded, timeout=5, what="the stalled refund to be made")
    assert provider.refund(refund, notify_url=NOTIFY_URL).succeeded
    assert trade.refunded == Decimal("1.00")


# --- notifications -----------------------------------------------------------------------------------------------


def test_a_genuine_payment_notification_is_parsed_and_answered_success(provider, fake_alipay):
    paying = paid(provider, fake_alipay)
    params = fake_alipay.payment_notification(paying.reference)

    notification = provider.parse_notification(FORM, form(params))

    assert notification.type == "payment.succeeded"
    assert (notification.reference, notification.amount, notification.currency) == (
        paying.reference,
        Decimal("12.34"),
        "CNY",
    )
    assert notification.transaction_id == fake_alipay.trades[paying.reference].trade_no
    assert notification.event_id == params["notify_id"]
    assert notification.payload is not None and "sign" not in notification.payload
    assert notification.payload["trade_status"] == "TRADE_SUCCESS"
    assert provider.answer(applied=True) == (200, "text/plain", b"success")
    assert provider.answer(applied=False, message="not applied") == (200, "text/plain", b"fail")


def test_a_closed_trade_notifies_a_failed_payment(provider, fake_alipay):
    paying = opened(provider, fake_alipay)
    fake_alipay.close_trade(paying.reference)

    notification = provider.parse_notification(FORM, form(fake_alipay.payment_notification(paying.reference)))

    assert (notification.type, notification.reference) == ("payment.failed", paying.reference)


@pytest.mark.parametrize("forge", ["signature", "app_id", "seller_id"])
def test_a_forged_notification_is_refused(provider, fake_alipay, forge):
    paying = paid(provider, fake_alipay)

    with pytest.raises(InvalidNotification) as refused:
        provider.parse_notification(FORM, form(fake_alipay.payment_notification(paying.reference, forge=forge)))

    assert refused.value.status == 400


def test_a_signed_notification_with_another_amount_carries_it_for_the_core_to_refuse(provider, fake_alipay):
    paying = paid(provider, fake_alipay)
    params = fake_alipay.payment_notification(paying.reference, forge="total_amount")

    notification = provider.parse_notification(FORM, form(params))

    assert notification.amount == Decimal("13.34") != paying.amount


@pytest.mark.parametrize(
    "spoil",
    [
        lambda params: {name: value for name, value in params.items() if name != "sign"},
        lambda params: params | {"sign_type": "RSA"},
        lambda params: params | {"trade_status": "WAIT_BUYER_PAY"},
        lambda params: params | {"sign": b64encode(b"not a signature").decode()},
    ],
    ids=["unsigned", "rsa1", "changed-after-signing", "garbage-signature"],
)
def test_a_notification_not_signed_as_alipay_signs_is_refused(provider, fake_alipay, spoil):
    paying = paid(provider, fake_alipay)

    with pytest.raises(InvalidNotification):
        provider.parse_notification(FORM, form(spoil(fake_alipay.payment_notification(paying.reference))))


@pytest.mark.parametrize(
    "body", [b"a=1&a=2", b"\xff\xfe", b"no equals sign", b""], ids=["twice", "not-utf8", "not-a-form", "empty"]
)
def test_a_body_that_is_not_a_plain_form_is_refused(provider, fake_alipay, body):
    with pytest.raises(InvalidNotification):
        provider.parse_notification(FORM, body)


def test_a_waiting_trade_notification_is_refused_as_nothing_to_act_on(provider, fake_alipay):
    paying = opened(provider, fake_alipay)
    params = fake_alipay.payment_notification(paying.reference, trade_status="WAIT_BUYER_PAY")

    with pytest.raises(InvalidNotification, match="WAIT_BUYER_PAY"):
        provider.parse_notification(FORM, form(params))


def test_an_old_genuine_notification_is_still_accepted_as_the_same_event(provider, fake_alipay):
    # Alipay redelivers for 25 hours: notify_time is no freshness proof, and notify_id names the event.
    paying = paid(provider, fake_alipay)
    fresh = provider.parse_notification(FORM, form(fake_alipay.payment_notification(paying.reference)))
    day_old = fake_alipay.payment_notification(paying.reference, notify_time=timezone.now() - timedelta(hours=26))

    assert provider.parse_notification(FORM, form(day_old)).event_id == fresh.event_id


def test_a_refund_notification_names_our_refund_and_its_own_amount(provider, fake_alipay):
    paying = paid(provider, fake_alipay)
    first, second = refund_of(paying, "2.00"), refund_of(paying, "3.00")
    provider.refund(first, notify_url=NOTIFY_URL)
    provider.refund(second, notify_url=NOTIFY_URL)
    params = fake_alipay.refund_notification(paying.reference, second.reference)

    notification = provider.parse_notification(FORM, form(params))

    assert (notification.type, notification.refund_reference) == ("refund.succeeded", second.reference)
    # refund_fee is the trade's refunded total; the notification carries this refund's own amount.
    assert params["refund_fee"] == "5.00" and notification.amount == Decimal("3.00")
    assert notification.reference == paying.reference


@pytest.fixture
def notify_endpoint():
    """A stand-in for the site's webhook: records each POST and answers as the site would."""
    received: list[bytes] = []

    class Endpoint(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"success")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/payments/webhooks/alipay/", received
    server.shutdown()
    server.server_close()


def test_the_cashiers_pay_button_posts_the_notification_and_returns_the_shopper(provider, fake_alipay, notify_endpoint):
    url, received = notify_endpoint
    paying = attempt()
    checkout = provider.start(
        paying, description="Batchpay", client_ip="203.0.113.9", return_url=RETURN_URL, notify_url=url
    )
    fake_alipay.open(checkout.redirect_url)
    opener = urllib_no_redirects()

    answer = opener.open(
        f"{fake_alipay.base_url}/_fake/pay", data=urlencode({"out_trade_no": paying.reference}).encode()
    )

    assert answer.status == 302 and answer.headers["Location"].startswith(RETURN_URL + "?")
    back = dict(parse_qsl(urlsplit(answer.headers["Location"]).query))
    assert back["out_trade_no"] == paying.reference and back["total_amount"] == "12.34" and back["sign"]
    (body,) = received
    assert provider.parse_notification(FORM, body).type == "payment.succeeded"


def urllib_no_redirects() -> urllib.request.OpenerDirector:
    """An opener that hands back a redirect instead of following it."""

    class KeepAnswer(urllib.request.HTTPErrorProcessor):
        def http_response(self, request: Any, response: Any) -> Any:
            return response

    return urllib.request.build_opener(KeepAnswer)


# --- the daily bill ----------------------------------------------------------------------------------------------


def test_the_days_bill_lists_payments_and_refunds_including_an_injected_mismatch(provider, fake_alipay):
    first, second = paid(provider, fake_alipay), paid(provider, fake_alipay, amount=Decimal("20.00"))
    refund = refund_of(first, "2.00")
    provider.refund(refund, notify_url=NOTIFY_URL)
    fake_alipay.inject_bill_mismatch(second.reference, amount=Decimal("19.00"))
    stranger = fake_alipay.inject_bill_mismatch()
    trade_no = {reference: trade.trade_no for reference, trade in fake_alipay.trades.items()}

    lines = provider.statement(timezone.now().astimezone(SHANGHAI).date())

    assert sorted(lines, key=lambda line: (line.reference, line.kind)) == sorted(
        [
            StatementLine(first.reference, trade_no[first.reference], "payment", Decimal("12.34"), "succeeded"),
            StatementLine(
                first.reference, trade_no[first.reference], "refund", Decimal("2.00"), "succeeded", refund.reference
            ),
            StatementLine(second.reference, trade_no[second.reference], "payment", Decimal("19.00"), "succeeded"),
            StatementLine(stranger, ANY_TRADE_NO, "payment", Decimal("1.00"), "succeeded"),
        ],
        key=lambda line: (line.reference, line.kind),
    )


def test_a_bill_whose_lines_do_not_add_up_to_its_totals_is_refused(provider, fake_alipay):
    paid(provider, fake_alipay)
    paid(provider, fake_alipay)
    archive = zipfile.ZipFile(io.BytesIO(fake_alipay.bill_zip(timezone.now().astimezone(SHANGHAI).date())))
    # As Alipay serves them: member names in GBK without the UTF-8 flag.
    assert all(not member.flag_bits & 0x800 for member in archive.infolist())
    cut = io.BytesIO()
    with zipfile.ZipFile(cut, "w") as bundle:
        for member in archive.infolist():
            text = archive.read(member).decode("gbk")
            lines = text.split("\r\n")
            detail_at = next((at for at, line in enumerate(lines) if line.startswith("支付宝交易号")), None)
            if detail_at is not None:
                del lines[detail_at + 1]
            bundle.writestr(member.filename, "\r\n".join(lines).encode("gbk"))

    with pytest.raises(ProviderError, match="交易合计"):
        bill_lines(cut.getvalue())


def test_a_day_whose_bill_is_not_made_yet_is_unavailable(provider, fake_alipay):
    with pytest.raises(ProviderUnavailable, match=r"isp\.bill_not_exist"):
        provider.statement(timezone.now().astimezone(SHANGHAI).date() + timedelta(days=1))


# --- configuration -----------------------------------------------------------------------------------------------


def test_the_rail_registers_itself_with_both_methods(fake_alipay):
    alipay = get_provider("alipay")

    assert isinstance(alipay, AlipayProvider)
    assert set(alipay.methods) == {"page", "wap"} and alipay.mobile_methods == {"wap"}
    assert alipay.max_refunds_per_payment is None and alipay.is_configured()


def test_unset_settings_are_named_one_line_each_and_nothing_is_sent(settings):
    for name in ("ALIPAY_APP_ID", "ALIPAY_APP_PRIVATE_KEY", "ALIPAY_PUBLIC_KEY", "ALIPAY_SELLER_ID"):
        setattr(settings, name, "")
    alipay = AlipayProvider()

    assert alipay.config_problems() == [
        "ALIPAY_APP_ID: not set",
        "ALIPAY_APP_PRIVATE_KEY: not set",
        "ALIPAY_PUBLIC_KEY: not set",
        "ALIPAY_SELLER_ID: not set",
    ]
    assert not alipay.is_configured()
    with pytest.raises(ProviderUnavailable, match="not configured"):
        alipay.query(attempt())


def test_malformed_settings_are_named_one_line_each_without_the_secret(fake_alipay, settings):
    secret_body = "MIIEsecretsecretsecretsecretsecret"
    settings.ALIPAY_APP_ID = "not-an-id"
    settings.ALIPAY_APP_PRIVATE_KEY = f"-----BEGIN PRIVATE KEY-----\n{secret_body}\n-----END PRIVATE KEY-----"
    settings.ALIPAY_PUBLIC_KEY = "/nowhere/alipay_public_key.pem"
    settings.ALIPAY_SELLER_ID = "12345"
    settings.ALIPAY_GATEWAY = "http://openapi.alipay.com/gateway.do"

    problems = AlipayProvider().config_problems()

    assert [problem.split(":")[0] for problem in problems] == [
        "ALIPAY_APP_ID",
        "ALIPAY_APP_PRIVATE_KEY",
        "ALIPAY_PUBLIC_KEY",
        "ALIPAY_SELLER_ID",
        "ALIPAY_GATEWAY",
    ]
    assert problems[1] == "ALIPAY_APP_PRIVATE_KEY: not a PEM RSA private key (nor a path to one)"
    assert "no readable file at /nowhere/alipay_public_key.pem" in problems[2]
    assert all("\n" not in problem and "secret" not in problem for problem in problems)


def test_the_apps_own_public_key_in_place_of_alipays_is_named(fake_alipay, settings):
    own = serialization.load_pem_private_key(fake_alipay.app_private_key_pem.encode(), password=None)
    assert isinstance(own, rsa.RSAPrivateKey)
    settings.ALIPAY_PUBLIC_KEY = public_pem(own.public_key())

    assert AlipayProvider().config_problems() == [
        "ALIPAY_PUBLIC_KEY: the public half of ALIPAY_APP_PRIVATE_KEY (应用公钥); it must be Alipay's (支付宝公钥)"
    ]


def test_a_short_key_is_named(fake_alipay, settings):
    settings.ALIPAY_APP_PRIVATE_KEY = private_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))

    assert AlipayProvider().config_problems() == ["ALIPAY_APP_PRIVATE_KEY: an RSA key of 1024 bits; RSA2 needs 2048"]


def test_keys_load_from_a_file_or_from_the_bare_base64_alipays_key_tool_shows(fake_alipay, settings, tmp_path):
    key_file = tmp_path / "app_private_key.pem"
    key_file.write_text(fake_alipay.app_private_key_pem)
    settings.ALIPAY_APP_PRIVATE_KEY = str(key_file)
    settings.ALIPAY_PUBLIC_KEY = "".join(fake_alipay.alipay_public_key_pem.strip().splitlines()[1:-1])
    alipay = AlipayProvider()

    assert alipay.config_problems() == []
    assert alipay.query(attempt()).status == GatewayState.UNKNOWN  # the fake accepted our signature


def test_an_answer_not_signed_with_alipays_key_is_distrusted_and_no_secret_is_logged(
    provider, fake_alipay, settings, caplog
):
    paying = paid(provider, fake_alipay)
    settings.ALIPAY_PUBLIC_KEY = public_pem(new_rsa_key().public_key())
    caplog.set_level(logging.DEBUG)

    with pytest.raises(ProviderUnavailable, match="signature"):
        provider.refund(refund_of(paying, "1.00"), notify_url=NOTIFY_URL)

    assert "ALIPAY_PUBLIC_KEY" in caplog.text
    private_body = "".join(fake_alipay.app_private_key_pem.splitlines()[1:-1])
    assert private_body[:40] not in caplog.text and private_body[-40:] not in caplog.text
    assert fake_alipay.refund_requests()[-1].params["sign"] not in caplog.text
