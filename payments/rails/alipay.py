"""Alipay (支付宝) as a payment rail: 电脑网站支付 (alipay.trade.page.pay) on computers and 手机网站支付
(alipay.trade.wap.pay) on phones, signed RSA2 through python-alipay-sdk, which also verifies Alipay's answers.

Going live, what every notification is checked for, and what the tests' fake gateway implements: docs/payments.md,
"Alipay". Nothing secret (keys, signatures) is logged or kept in a notification's payload.
"""

from __future__ import annotations

import csv
import http.client
import io
import itertools
import logging
import re
import urllib.request
import zipfile
import zlib
from base64 import b64decode
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

from alipay import AliPay  # type: ignore[import-untyped]  # python-alipay-sdk ships no type information
from alipay.exceptions import AliPayException, AliPayValidationError  # type: ignore[import-untyped]
from alipay.utils import AliPayConfig  # type: ignore[import-untyped]
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from config import inputs
from payments import providers
from payments.providers import (
    AttemptLike,
    AttemptState,
    Checkout,
    GatewayState,
    InvalidNotification,
    Notification,
    PaymentProvider,
    ProviderError,
    ProviderUnavailable,
    RefundAnswer,
    RefundLike,
    StatementLine,
)

logger = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")
ALIPAY_TIME = "%Y-%m-%d %H:%M:%S"
# method key -> (API, product_code). 手机网站支付's product code is QUICK_WAP_WAY in Alipay's documentation (the
# SDK's own wap helper sends QUICK_WAP_PAY, which is why it is not used).
PAY_APIS = {
    "page": ("alipay.trade.page.pay", "FAST_INSTANT_TRADE_PAY"),
    "wap": ("alipay.trade.wap.pay", "QUICK_WAP_WAY"),
}
SUBJECT_MAX_LENGTH = 256
# total_amount and refund_amount: "单位为元，精确到小数点后两位，取值范围[0.01,100000000]".
MIN_AMOUNT, MAX_AMOUNT = Decimal("0.01"), Decimal("100000000")
# Errors after which nothing is known to have happened: ask again later with the same out_trade_no /
# out_request_no. Code 20000 is "服务不可用"; isp.* are Alipay's own failures.
RETRYABLE_SUB_CODES = frozenset({"ACQ.SYSTEM_ERROR", "AQC.SYSTEM_ERROR", "ACQ.SELLER_BALANCE_NOT_ENOUGH"})
MAX_NOTIFICATION_FIELDS = 100
MAX_BILL_BYTES = 64 * 1024 * 1024


# --- configuration ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlipaySettings:
    app_id: str
    app_private_key: str
    alipay_public_key: str
    seller_id: str
    gateway: str
    timeout: float

    @classmethod
    def current(cls) -> AlipaySettings:
        return cls(
            app_id=settings.ALIPAY_APP_ID.strip(),
            app_private_key=settings.ALIPAY_APP_PRIVATE_KEY.strip(),
            alipay_public_key=settings.ALIPAY_PUBLIC_KEY.strip(),
            seller_id=settings.ALIPAY_SELLER_ID.strip(),
            gateway=settings.ALIPAY_GATEWAY.strip(),
            timeout=settings.ALIPAY_TIMEOUT_SECONDS,
        )


class BadKey(Exception):
    """Why a configured key cannot be used; the message never quotes the key."""


def _key_bytes(value: str) -> tuple[str, bytes]:
    """("pem", text) or ("der", bytes) from PEM text, the bare base64 of Alipay's key tool, or a file's path."""
    if value.startswith("-----BEGIN"):
        return "pem", value.encode()
    # The base64 of an RSA key in DER starts with an ASN.1 SEQUENCE: "MI…".
    if value.startswith("MI"):
        try:
            return "der", b64decode("".join(value.split()), validate=True)
        except ValueError:
            raise BadKey("neither PEM nor base64") from None
    try:
        text = Path(value).read_text()
    except (OSError, UnicodeDecodeError):
        raise BadKey(f"not a key, and no readable file at {inputs.shown(value)}") from None
    if not text.strip().startswith("-----BEGIN"):
        raise BadKey(f"the file {inputs.shown(value)} is not PEM")
    return "pem", text.strip().encode()


def app_private_key(value: str) -> rsa.RSAPrivateKey:
    kind, data = _key_bytes(value)
    try:
        key = (
            serialization.load_pem_private_key(data, password=None)
            if kind == "pem"
            else serialization.load_der_private_key(data, password=None)
        )
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise BadKey("not a PEM RSA private key (nor a path to one)") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise BadKey("not an RSA key (RSA2 signs with RSA)")
    return key


def alipay_public_key(value: str) -> rsa.RSAPublicKey:
    if "CERTIFICATE" in value[:64]:
        raise BadKey("a certificate (公钥证书 mode): this shop uses 公钥 mode and Alipay's public key (支付宝公钥)")
    kind, data = _key_bytes(value)
    try:
        key = serialization.load_pem_public_key(data) if kind == "pem" else serialization.load_der_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise BadKey("not a PEM RSA public key (nor a path to one)") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise BadKey("not an RSA public key")
    return key


@lru_cache(maxsize=8)
def config_problems_of(config: AlipaySettings) -> tuple[str, ...]:
    problems = []
    if not config.app_id:
        problems.append("ALIPAY_APP_ID: not set")
    elif not re.fullmatch(r"[0-9]{16}", config.app_id):
        problems.append("ALIPAY_APP_ID: not an Alipay app id (16 digits)")
    private = public = None
    if not config.app_private_key:
        problems.append("ALIPAY_APP_PRIVATE_KEY: not set")
    else:
        try:
            private = app_private_key(config.app_private_key)
        except BadKey as bad:
            problems.append(f"ALIPAY_APP_PRIVATE_KEY: {bad}")
        else:
            if private.key_size < 2048:
                problems.append(f"ALIPAY_APP_PRIVATE_KEY: an RSA key of {private.key_size} bits; RSA2 needs 2048")
    if not config.alipay_public_key:
        problems.append("ALIPAY_PUBLIC_KEY: not set")
    else:
        try:
            public = alipay_public_key(config.alipay_public_key)
        except BadKey as bad:
            problems.append(f"ALIPAY_PUBLIC_KEY: {bad}")
    if private and public and private.public_key().public_numbers() == public.public_numbers():
        problems.append(
            "ALIPAY_PUBLIC_KEY: the public half of ALIPAY_APP_PRIVATE_KEY (应用公钥); it must be Alipay's (支付宝公钥)"
        )
    if not config.seller_id:
        problems.append("ALIPAY_SELLER_ID: not set")
    elif not re.fullmatch(r"2088[0-9]{12}", config.seller_id):
        problems.append("ALIPAY_SELLER_ID: not a merchant PID (2088 and 12 digits)")
    gateway = urlsplit(config.gateway)
    if not (gateway.scheme == "https" or (gateway.scheme == "http" and gateway.hostname in ("127.0.0.1", "localhost"))):
        problems.append("ALIPAY_GATEWAY: not an https:// URL")
    return tuple(problems)


# --- the SDK behind typed calls ---------------------------------------------------------------------------------


def _shanghai(moment: datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime(ALIPAY_TIME)


class Gateway:
    """python-alipay-sdk: it signs our requests with the app's key and verifies Alipay's answers with Alipay's."""

    def __init__(self, config: AlipaySettings) -> None:
        pem = serialization.Encoding.PEM
        self.url = config.gateway
        self._sdk = AliPay(
            appid=config.app_id,
            app_private_key_string=app_private_key(config.app_private_key)
            .private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
            .decode(),
            alipay_public_key_string=alipay_public_key(config.alipay_public_key)
            .public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode(),
            sign_type="RSA2",
            # urlopen's timeout: connecting and each read.
            config=AliPayConfig(timeout=config.timeout),
        )
        # The SDK picks the production or the sandbox gateway by its `debug` flag; ours is a setting.
        self._sdk._gateway = config.gateway

    def checkout_url(self, api: str, biz: dict[str, str], *, return_url: str, notify_url: str) -> str:
        # The SDK would stamp the server's local time; Alipay reads timestamps as Beijing time.
        now = _shanghai(timezone.now())
        signed: str = self._sdk.client_api(api, biz, return_url=return_url, notify_url=notify_url, timestamp=now)
        return f"{self.url}?{signed}"

    def call(self, api: str, biz: dict[str, str]) -> dict[str, Any]:
        """The verified `<api>_response` object; ProviderUnavailable when there is no answer we can trust."""
        try:
            answer = self._sdk.server_api(api, biz, timestamp=_shanghai(timezone.now()))
        except AliPayValidationError:
            logger.error("Alipay %s: the answer's signature does not verify with ALIPAY_PUBLIC_KEY", api)
            raise ProviderUnavailable(f"{api}: the answer's signature does not verify") from None
        except AliPayException as unsigned:
            # error_response, or an answer without `sign`: its code cannot be trusted to decide anything.
            logger.warning(
                "Alipay %s answered without a signature: %s", api, inputs.shown(str(unsigned), max_length=300)
            )
            raise ProviderUnavailable(f"{api}: Alipay answered without a signature") from None
        except (OSError, http.client.HTTPException, ValueError, AttributeError, TypeError) as error:
            # OSError: refused, reset, timed out, or an HTTP error status (urllib's HTTPError); ValueError: not
            # JSON; AttributeError/TypeError: JSON of another shape than Alipay's.
            raise ProviderUnavailable(f"{api}: no usable answer from Alipay ({type(error).__name__})") from None
        if not isinstance(answer, dict):
            raise ProviderUnavailable(f"{api}: no usable answer from Alipay")
        return answer

    def verify(self, params: dict[str, str], sign: str) -> bool:
        """Alipay's RSA2 signature over the sorted `key=value` pairs (sign and sign_type already removed)."""
        try:
            return bool(self._sdk.verify(dict(params), sign))
        except ValueError:  # a sign that is not base64
            return False


@lru_cache(maxsize=8)
def gateway_for(config: AlipaySettings) -> Gateway:
    return Gateway(config)


def _refusal(api: str, answer: Mapping[str, Any]) -> ProviderError | ProviderUnavailable:
    code, sub_code = str(answer.get("code", "")), str(answer.get("sub_code", ""))
    text = f"Alipay {api}: {code} {sub_code} {inputs.shown(str(answer.get('sub_msg', '')), max_length=200)}".strip()
    if code == "20000" or sub_code in RETRYABLE_SUB_CODES or sub_code.startswith("isp."):
        return ProviderUnavailable(text)
    return ProviderError(text)


def _succeeded(api: str, answer: Mapping[str, Any]) -> None:
    if answer.get("code") != "10000":
        raise _refusal(api, answer)


def _yuan(amount: Decimal) -> str:
    if amount != amount.quantize(MIN_AMOUNT) or not MIN_AMOUNT <= amount <= MAX_AMOUNT:
        raise ProviderError(f"Alipay takes amounts from 0.01 to 100000000.00 yuan, not {amount}")
    return f"{amount:.2f}"


def _amount(value: object, what: str) -> Decimal:
    try:
        amount = inputs.decimal_from_text(str(value))
    except inputs.InputRefused:
        raise ProviderError(f"Alipay's {what} is not an amount") from None
    if amount != amount.quantize(MIN_AMOUNT):
        raise ProviderError(f"Alipay's {what} has more than two decimals")
    return amount


def _subject(description: str) -> str:
    # "不可使用特殊字符，如 /，=，& 等": they would also change how the signed string splits.
    subject = " ".join(re.sub(r"[/=&]", " ", description).split())[:SUBJECT_MAX_LENGTH]
    return subject or "Batchpay"


# --- the provider -----------------------------------------------------------------------------------------------

TRADE_STATES = {
    "WAIT_BUYER_PAY": GatewayState.OPEN,
    "TRADE_SUCCESS": GatewayState.PAID,
    "TRADE_FINISHED": GatewayState.PAID,
    "TRADE_CLOSED": GatewayState.CLOSED,
}
NOTIFIED_PAYMENTS = {
    "TRADE_SUCCESS": "payment.succeeded",
    # Sent when the refund window ends, months after TRADE_SUCCESS (or at once for a trade that takes no refunds).
    "TRADE_FINISHED": "payment.succeeded",
    "TRADE_CLOSED": "payment.failed",
}


class AlipayProvider(PaymentProvider):
    name = "alipay"
    label = _("Alipay")
    # Typed by PaymentProvider (the contract's `methods`), read only: not a ClassVar here, or the two would clash.
    methods = {"page": _("Alipay on a computer"), "wap": _("Alipay on a phone")}  # noqa: RUF012
    mobile_methods = frozenset({"wap"})
    max_refunds_per_payment = None

    def is_configured(self) -> bool:
        # Not only present: a rail whose keys do not load would fail every shopper who chose it.
        return not self.config_problems()

    def config_problems(self) -> list[str]:
        return list(config_problems_of(AlipaySettings.current()))

    def _gateway(self) -> Gateway:
        config = AlipaySettings.current()
        problems = config_problems_of(config)
        if problems:
            # Nothing was sent: once the settings are right, asking again works.
            raise ProviderUnavailable("Alipay is not configured: " + "; ".join(problems))
        return gateway_for(config)

    def start(
        self, attempt: AttemptLike, *, description: str, client_ip: str, return_url: str, notify_url: str
    ) -> Checkout:
        if attempt.method not in PAY_APIS:
            raise ProviderError(f"Alipay has no method {attempt.method!r}")
        if attempt.currency != "CNY":
            raise ProviderError(f"Alipay takes CNY, not {attempt.currency}")
        if attempt.expires_at is not None and attempt.expires_at <= timezone.now():
            raise ProviderError("the attempt has expired")
        api, product_code = PAY_APIS[attempt.method]
        biz = {
            "out_trade_no": attempt.reference,
            "total_amount": _yuan(attempt.amount),
            "subject": _subject(description),
            "product_code": product_code,
        }
        if attempt.expires_at is not None:
            # Alipay closes the trade itself at the payment's expiry, even if nobody asks it to.
            biz["time_expire"] = _shanghai(attempt.expires_at)
        if attempt.method == "wap":
            biz["quit_url"] = return_url  # where a shopper who gives up half-way goes back to
        url = self._gateway().checkout_url(api, biz, return_url=return_url, notify_url=notify_url)
        return Checkout(redirect_url=url)

    def query(self, attempt: AttemptLike) -> AttemptState:
        answer = self._gateway().call("alipay.trade.query", {"out_trade_no": attempt.reference})
        if answer.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
            # Page and wap trades exist at Alipay only once the shopper has opened the cashier (wap: paid).
            return AttemptState(status=GatewayState.UNKNOWN)
        _succeeded("alipay.trade.query", answer)
        if answer.get("out_trade_no") != attempt.reference:
            raise ProviderError("Alipay answered about another trade")
        status = TRADE_STATES.get(str(answer.get("trade_status")))
        if status is None:
            raise ProviderError(f"Alipay's trade_status {inputs.shown(str(answer.get('trade_status')))!r} is unknown")
        paid = _amount(answer.get("total_amount"), "total_amount") if status == GatewayState.PAID else None
        return AttemptState(status=status, transaction_id=str(answer.get("trade_no") or ""), amount=paid)

    def close(self, attempt: AttemptLike) -> None:
        answer = self._gateway().call("alipay.trade.close", {"out_trade_no": attempt.reference})
        if answer.get("code") == "10000" or answer.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
            # A trade Alipay never saw can still be opened until time_expire: a payment then is a late success.
            return
        if answer.get("sub_code") == "ACQ.TRADE_STATUS_ERROR":
            state = self.query(attempt).status
            if state == GatewayState.CLOSED:
                return
            if state == GatewayState.PAID:
                raise ProviderError("Alipay: the trade was paid before it could be closed")
        raise _refusal("alipay.trade.close", answer)

    def refund(self, refund: RefundLike, *, notify_url: str) -> RefundAnswer:
        # Alipay sends refund notifications to the payment's notify_url; the refund API takes none.
        biz = {
            "out_trade_no": refund.attempt.reference,
            "refund_amount": _yuan(refund.amount),
            # Asking again with it refunds once: a repeat answers fund_change=N.
            "out_request_no": refund.reference,
        }
        if refund.reason:
            biz["refund_reason"] = refund.reason[:256]
        answer = self._gateway().call("alipay.trade.refund", biz)
        _succeeded("alipay.trade.refund", answer)
        if answer.get("fund_change") == "Y":
            return RefundAnswer(provider_reference="", succeeded=True)
        # "fund_change=N或无此字段值返回时需通过退款查询接口进一步确认退款状态": a repeat of a refund already made.
        try:
            return RefundAnswer(provider_reference="", succeeded=self.query_refund(refund) == "succeeded")
        except ProviderUnavailable:
            return RefundAnswer(provider_reference="", succeeded=False)

    def query_refund(self, refund: RefundLike) -> str:
        answer = self._gateway().call(
            "alipay.trade.fastpay.refund.query",
            {"out_trade_no": refund.attempt.reference, "out_request_no": refund.reference},
        )
        if answer.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
            return "unknown"
        _succeeded("alipay.trade.fastpay.refund.query", answer)
        if answer.get("refund_status") != "REFUND_SUCCESS":
            # Not carried out (or never received): the docs say to ask again with the same out_request_no.
            return "unknown"
        refunded = _amount(answer.get("refund_amount"), "refund_amount")
        if refunded != refund.amount:
            raise ProviderError(f"Alipay refunded {refunded} for {refund.reference}, not {refund.amount}")
        return "succeeded"

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        config = AlipaySettings.current()
        if config_problems_of(config):
            raise InvalidNotification("Alipay is not configured here", 404)
        params = _form(body)
        sign, sign_type = params.pop("sign", ""), params.pop("sign_type", "")
        if not sign or sign_type != "RSA2":
            raise InvalidNotification("sign and sign_type=RSA2 are required")
        gateway = gateway_for(config)
        if not gateway.verify(params, sign):
            raise InvalidNotification("signature rejected")
        # Signed by Alipay, yet perhaps for another app or merchant: only ours may move money here.
        if params.get("app_id") != config.app_id:
            raise InvalidNotification("app_id is not this shop's")
        if params.get("seller_id") != config.seller_id:
            raise InvalidNotification("seller_id is not this shop's")
        if params.get("notify_type") != "trade_status_sync":
            raise InvalidNotification("notify_type must be trade_status_sync")
        bad_text = inputs.first_bad_text(params)
        if bad_text:
            raise InvalidNotification(f"{bad_text[0]}: {bad_text[1]}")
        for field in ("notify_id", "out_trade_no", "trade_no", "trade_status", "total_amount"):
            if not params.get(field):
                raise InvalidNotification(f"{field} is missing")
        if len(params["out_trade_no"]) > providers.MAX_REFERENCE_LENGTH:
            raise InvalidNotification(f"out_trade_no is longer than {providers.MAX_REFERENCE_LENGTH} characters")
        refund_reference = params.get("out_biz_no", "")
        if refund_reference:
            # A refund's notification: refund_fee is the trade's refunded total, so this refund's own amount comes
            # from Alipay's signed answer to the refund query.
            kind = "refund.succeeded"
            amount = self._confirmed_refund(gateway, params["out_trade_no"], refund_reference)
        else:
            notified = NOTIFIED_PAYMENTS.get(params["trade_status"])
            if notified is None:
                raise InvalidNotification(f"trade_status {inputs.shown(params['trade_status'])} is not acted on")
            kind, amount = notified, _notified_amount(params["total_amount"])
        return Notification(
            event_id=params["notify_id"][:100],
            type=kind,
            reference=params["out_trade_no"],
            amount=amount,
            currency="CNY",
            transaction_id=params["trade_no"],
            refund_reference=refund_reference,
            payload=params,
        )

    def _confirmed_refund(self, gateway: Gateway, reference: str, refund_reference: str) -> Decimal:
        try:
            answer = gateway.call(
                "alipay.trade.fastpay.refund.query", {"out_trade_no": reference, "out_request_no": refund_reference}
            )
        except ProviderUnavailable as unavailable:
            # Answering "fail" makes Alipay notify again later.
            raise InvalidNotification(f"the refund could not be confirmed: {unavailable}", 503) from None
        if answer.get("code") != "10000" or answer.get("refund_status") != "REFUND_SUCCESS":
            raise InvalidNotification("Alipay's refund query does not confirm this refund", 404)
        try:
            return _amount(answer.get("refund_amount"), "refund_amount")
        except ProviderError as error:
            raise InvalidNotification(str(error)) from None

    def answer(self, *, applied: bool, message: str = "") -> tuple[int, str, bytes]:
        # Alipay reads the body alone: "success" ends its retries (8 within 25 hours), anything else asks for more.
        return 200, "text/plain", b"success" if applied else b"fail"

    def statement(self, day: date) -> list[StatementLine]:
        gateway = self._gateway()
        answer = gateway.call(
            "alipay.data.dataservice.bill.downloadurl.query", {"bill_type": "trade", "bill_date": day.isoformat()}
        )
        # isp.bill_not_exist (the day's bill is made the next morning) is an isp.* code: ProviderUnavailable.
        _succeeded("alipay.data.dataservice.bill.downloadurl.query", answer)
        return bill_lines(_download(str(answer.get("bill_download_url", "")), AlipaySettings.current().timeout))


def _form(body: bytes) -> dict[str, str]:
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=True,
            errors="strict",
            max_num_fields=MAX_NOTIFICATION_FIELDS,
        )
    except ValueError:  # UnicodeDecodeError too
        raise InvalidNotification("the body is not a UTF-8 form") from None
    params = dict(pairs)
    if len(params) != len(pairs):
        raise InvalidNotification("a field appears twice")
    return params


def _notified_amount(text: str) -> Decimal:
    try:
        amount = _amount(text, "total_amount")
    except ProviderError as error:
        raise InvalidNotification(str(error)) from None
    if amount <= 0:
        raise InvalidNotification("total_amount must be positive")
    return amount


# --- the daily bill ---------------------------------------------------------------------------------------------


def _download(url: str, timeout: float) -> bytes:
    if urlsplit(url).scheme not in ("https", "http"):
        raise ProviderError("Alipay's bill_download_url is not an http(s) URL")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            archive: bytes = response.read(MAX_BILL_BYTES + 1)
    except (OSError, http.client.HTTPException) as error:
        # The URL lives 30 seconds: the next run asks for a new one.
        raise ProviderUnavailable(f"the Alipay bill could not be downloaded ({type(error).__name__})") from None
    if len(archive) > MAX_BILL_BYTES:
        raise ProviderError(f"the Alipay bill is larger than {MAX_BILL_BYTES} bytes")
    return archive


BILL_DETAIL_HEADER = "支付宝交易号"
BILL_KINDS = {"交易": "payment", "退款": "refund"}
BILL_COLUMNS = ("支付宝交易号", "商户订单号", "业务类型", "订单金额", "退款批次号/请求号")


def bill_lines(archive: bytes) -> list[StatementLine]:
    """The lines of the 业务明细 file in a trade bill's zip (GBK CSV; the other file is its 汇总)."""
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
            texts = []
            for member in bundle.infolist():
                if member.filename.lower().endswith(".csv"):
                    with bundle.open(member) as content:
                        texts.append(content.read(MAX_BILL_BYTES).decode("gb18030"))
    except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError, UnicodeDecodeError) as error:
        raise ProviderError(f"the Alipay bill cannot be read ({type(error).__name__})") from None
    for text in texts:
        # Found by its header line rather than its name: names in Alipay's zips are GBK without the UTF-8 flag.
        lines = text.lstrip("\ufeff").splitlines()
        header_at = next((at for at, line in enumerate(lines) if line.startswith(BILL_DETAIL_HEADER)), None)
        if header_at is not None:
            return _detail_lines(lines, header_at)
    raise ProviderError("the Alipay bill has no 业务明细 file")


def _cell(text: str) -> str:
    # Alipay pads cells with spaces and tabs (a tab keeps spreadsheets from turning numbers into floats).
    return text.strip().strip("`").strip()


def _detail_lines(lines: list[str], header_at: int) -> list[StatementLine]:
    body = list(itertools.takewhile(lambda line: not line.startswith("#"), lines[header_at + 1 :]))
    rows = csv.reader([lines[header_at], *(line for line in body if line.strip())])
    header = [re.sub(r"[（(]元[）)]", "", _cell(name)) for name in next(rows)]
    missing = [name for name in BILL_COLUMNS if name not in header]
    if missing:
        raise ProviderError(f"the Alipay bill has no column {', '.join(missing)}")
    at = {name: header.index(name) for name in BILL_COLUMNS}
    statement = []
    for row in rows:
        cells = [_cell(value) for value in row]
        if len(cells) < len(header):
            raise ProviderError("an Alipay bill line has fewer cells than its header")
        kind = BILL_KINDS.get(cells[at["业务类型"]])
        if kind is None:
            continue
        statement.append(
            StatementLine(
                reference=cells[at["商户订单号"]],
                transaction_id=cells[at["支付宝交易号"]],
                kind=kind,
                # Refund lines carry negative amounts.
                amount=abs(_amount(cells[at["订单金额"]], "订单金额")),
                # The trade bill lists only money that moved: paid trades and refunds carried out.
                status="succeeded",
                refund_reference=cells[at["退款批次号/请求号"]] if kind == "refund" else "",
            )
        )
    _check_totals(lines[header_at + 1 + len(body) :], statement)
    return statement


def _check_totals(summary: list[str], statement: list[StatementLine]) -> None:
    """The summary lines (#交易合计：N笔，… #退款合计：M笔，…) must count what the detail lines hold: a cut-off
    file must not pass for a day with fewer transactions."""
    for label, kind in (("交易合计", "payment"), ("退款合计", "refund")):
        stated = next((re.search(rf"#{label}[：:]\s*([0-9]+)\s*笔", line) for line in summary if label in line), None)
        if stated and int(stated.group(1)) != sum(line.kind == kind for line in statement):
            raise ProviderError(f"the Alipay bill's {label} does not count its detail lines")


providers.register(AlipayProvider())
