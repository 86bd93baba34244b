"""WeChat Pay (API v3): Native (a QR code on desktop) and H5 (phone browsers) behind the PaymentProvider interface.

wechatpayv3's Core signs every request with our merchant key (`Authorization: WECHATPAY2-SHA256-RSA2048 …`),
verifies every answer's `Wechatpay-Signature` with WeChat Pay's public key or its platform certificates, and
decrypts notification resources with the APIv3 key. The request bodies are built here, from the API reference, so
that what WeChat Pay is told (amounts in fen, time_expire, a description within 127 bytes) is checked in one
place. How to go live, and what every notification must pass: docs/payments.md, "WeChat Pay".
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from wechatpayv3.core import Core  # type: ignore[import-untyped]  # the SDK ships no type information
from wechatpayv3.type import RequestType  # type: ignore[import-untyped]

from config import inputs, json_input
from payments import providers
from payments.providers import (
    MAX_REFERENCE_LENGTH,
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

if TYPE_CHECKING:
    from django_stubs_ext import StrPromise

logger = logging.getLogger(__name__)

# (connect, read) seconds: a worker must not hang on WeChat Pay; an unanswered call is asked again later.
TIMEOUT = (5, 10)
# WeChat Pay documents ±5 minutes; an older notification is refused, so a captured one cannot be replayed later.
MAX_CLOCK_SKEW_SECONDS = 300
SHANGHAI = ZoneInfo("Asia/Shanghai")
DESCRIPTION_MAX_BYTES = 127  # description: string(127), counted in UTF-8 bytes
REFUND_REASON_MAX_CHARACTERS = 80
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
# The documented answers after which nothing happened and the same request may be sent again unchanged.
RETRYABLE_CODES = frozenset({"SYSTEM_ERROR", "FREQUENCY_LIMITED", "NOT_ENOUGH"})
NOT_FOUND_CODES = frozenset({"ORDER_NOT_EXIST", "RESOURCE_NOT_EXISTS"})

TRADE_STATES = {
    "SUCCESS": GatewayState.PAID,
    "REFUND": GatewayState.PAID,  # paid, and a refund was asked for since
    "NOTPAY": GatewayState.OPEN,
    "USERPAYING": GatewayState.OPEN,
    "CLOSED": GatewayState.CLOSED,
    "REVOKED": GatewayState.CLOSED,
    "PAYERROR": GatewayState.DECLINED,
}
REFUND_STATES = {"SUCCESS": "succeeded", "PROCESSING": "pending", "ABNORMAL": "failed", "CLOSED": "failed"}
FAILED_TRADE_STATES = frozenset({"PAYERROR", "CLOSED", "REVOKED"})
NOTIFICATION_TYPES = {
    "REFUND.SUCCESS": "refund.succeeded",
    "REFUND.ABNORMAL": "refund.failed",
    "REFUND.CLOSED": "refund.failed",
}

_CREDENTIALS = (
    "WECHATPAY_MCHID",
    "WECHATPAY_APPID",
    "WECHATPAY_PRIVATE_KEY",
    "WECHATPAY_CERT_SERIAL_NO",
    "WECHATPAY_APIV3_KEY",
)
_PUBLIC_KEY = ("WECHATPAY_PUBLIC_KEY", "WECHATPAY_PUBLIC_KEY_ID")
_SERIAL = re.compile(r"[0-9A-Fa-f]{1,40}")  # a certificate serial number in hexadecimal


class WeChatPayRefused(ProviderError):
    """A definitive 4xx answer: `code` is WeChat Pay's error code (PARAM_ERROR, ORDER_CLOSED, …)."""

    def __init__(self, code: str, message: str, status: int):
        super().__init__(f"WeChat Pay refused ({status} {code}): {message}")
        self.code = code
        self.status = status


# ---------------------------------------------------------------------------------------------------------------
# Configuration: read from settings, checked once per distinct value
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Config:
    mchid: str
    appid: str
    private_key: str = field(repr=False)  # PKCS#8 PEM, the form the SDK loads
    cert_serial_no: str
    apiv3_key: str = field(repr=False)
    public_key: str  # SubjectPublicKeyInfo PEM; "" in platform-certificate mode
    public_key_id: str
    cert_dir: str
    api_base: str


def _setting(name: str) -> str:
    return str(getattr(settings, name, "") or "").strip()


def _pem_text(value: str) -> str | None:
    """PEM text as given, or read from the file it names; None when it is neither."""
    if "-----BEGIN" in value:
        return value
    try:
        path = Path(value).expanduser()
        return path.read_text(encoding="utf-8") if path.is_file() else None
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _configuration() -> tuple[_Config | None, tuple[str, ...]]:
    names = (*_CREDENTIALS, *_PUBLIC_KEY, "WECHATPAY_CERT_DIR", "WECHATPAY_API_BASE")
    values = {name: _setting(name) for name in names}
    # Files are read on every call (cheap), so that a replaced key file counts; parsing is cached on the content.
    for name in ("WECHATPAY_PRIVATE_KEY", "WECHATPAY_PUBLIC_KEY"):
        if values[name]:
            values[name] = _pem_text(values[name]) or "\x00unreadable"
    return _checked(tuple(values.items()))


@lru_cache(maxsize=8)
def _checked(items: tuple[tuple[str, str], ...]) -> tuple[_Config | None, tuple[str, ...]]:
    """The configuration and every problem with it, one line each, never quoting a secret."""
    values = dict(items)
    if not any(values[name] for name in (*_CREDENTIALS, *_PUBLIC_KEY)):
        return None, ()  # the rail is simply not used
    problems = [f"{name}: not set" for name in _CREDENTIALS if not values[name]]
    if values["WECHATPAY_MCHID"] and not values["WECHATPAY_MCHID"].isdigit():
        problems.append("WECHATPAY_MCHID: not a merchant number (digits only)")
    private_key = ""
    if values["WECHATPAY_PRIVATE_KEY"]:
        private_key, problem = _private_key_pem(values["WECHATPAY_PRIVATE_KEY"])
        if problem:
            problems.append(f"WECHATPAY_PRIVATE_KEY: {problem}")
    if values["WECHATPAY_CERT_SERIAL_NO"] and not _SERIAL.fullmatch(values["WECHATPAY_CERT_SERIAL_NO"]):
        problems.append("WECHATPAY_CERT_SERIAL_NO: not a certificate serial number (hexadecimal)")
    key_length = len(values["WECHATPAY_APIV3_KEY"].encode())
    if values["WECHATPAY_APIV3_KEY"] and key_length != 32:
        problems.append(f"WECHATPAY_APIV3_KEY: must be 32 bytes long, not {key_length}")
    public_key = ""
    for name, other in (_PUBLIC_KEY, _PUBLIC_KEY[::-1]):
        if values[other] and not values[name]:
            problems.append(f"{name}: not set, although {other} is (set both, or neither for platform certificates)")
    if values["WECHATPAY_PUBLIC_KEY"]:
        public_key, problem = _public_key_pem(values["WECHATPAY_PUBLIC_KEY"])
        if problem:
            problems.append(f"WECHATPAY_PUBLIC_KEY: {problem}")
    if values["WECHATPAY_PUBLIC_KEY_ID"] and not values["WECHATPAY_PUBLIC_KEY_ID"].startswith("PUB_KEY_ID_"):
        problems.append("WECHATPAY_PUBLIC_KEY_ID: not a WeChat Pay public key id (PUB_KEY_ID_…)")
    base = urlsplit(values["WECHATPAY_API_BASE"])
    if not (base.scheme == "https" or (base.scheme == "http" and base.hostname in ("127.0.0.1", "localhost"))):
        problems.append("WECHATPAY_API_BASE: must be an https:// URL")
    if problems:
        return None, tuple(problems)
    config = _Config(
        mchid=values["WECHATPAY_MCHID"],
        appid=values["WECHATPAY_APPID"],
        private_key=private_key,
        cert_serial_no=values["WECHATPAY_CERT_SERIAL_NO"].upper(),
        apiv3_key=values["WECHATPAY_APIV3_KEY"],
        public_key=public_key,
        public_key_id=values["WECHATPAY_PUBLIC_KEY_ID"],
        cert_dir=values["WECHATPAY_CERT_DIR"],
        api_base=values["WECHATPAY_API_BASE"],
    )
    return config, ()


def _private_key_pem(text: str) -> tuple[str, str]:
    """The key as PKCS#8 PEM (the SDK reads only that form; a PKCS#1 file is converted), or a problem."""
    if text.startswith("\x00"):
        return "", "neither PEM text nor the path of a readable PEM file"
    try:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError):
        return "", "not a PEM private key without a password"
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
        return "", "not an RSA private key of at least 2048 bits"
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem.decode(), ""


def _public_key_pem(text: str) -> tuple[str, str]:
    if text.startswith("\x00"):
        return "", "neither PEM text nor the path of a readable PEM file"
    try:
        key = serialization.load_pem_public_key(text.encode())
    except ValueError:
        return "", "not a PEM public key (BEGIN PUBLIC KEY)"
    if not isinstance(key, rsa.RSAPublicKey):
        return "", "not an RSA public key"
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode(), ""


# ---------------------------------------------------------------------------------------------------------------
# The SDK, narrowly typed
# ---------------------------------------------------------------------------------------------------------------
class _SdkCore(Core):
    """The SDK's Core, talking to our API base from the start: in platform-certificate mode its constructor already
    downloads the certificates, from the production host it hard-codes in `_gate_way`."""

    def __init__(self, *, api_base: str, **options: Any) -> None:
        self._api_base = api_base
        super().__init__(**options)
        self._gate_way = api_base

    def _init_certificates(self) -> None:
        self._gate_way = self._api_base
        super()._init_certificates()


class _SdkFailure(Exception):
    """The SDK raised its bare Exception: an answer whose signature did not verify, or no platform certificate."""


def _sdk_call(function: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return function(*args, **kwargs)
    except Exception as failed:
        if type(failed) is Exception:  # the SDK's own failures are bare Exceptions; a bug of ours is not one
            raise _SdkFailure(str(failed)) from None
        raise


@lru_cache(maxsize=4)
def _sdk(config: _Config) -> _SdkCore:
    """One Core per configuration: in platform-certificate mode it holds the certificates it downloaded."""
    core: _SdkCore = _sdk_call(
        _SdkCore,
        api_base=config.api_base,
        mchid=config.mchid,
        cert_serial_no=config.cert_serial_no,
        private_key=config.private_key,
        apiv3_key=config.apiv3_key,
        cert_dir=None if config.public_key else config.cert_dir,
        timeout=TIMEOUT,
        public_key=config.public_key or None,
        public_key_id=config.public_key_id or None,
    )
    return core


def _fen(amount: Decimal) -> int:
    fen = amount * 100 if amount.is_finite() else Decimal(0)
    if fen != fen.to_integral_value() or fen <= 0:
        raise ProviderError(f"WeChat Pay takes positive whole fen, not {amount} yuan")
    return int(fen)


def _yuan(fen: int) -> Decimal:
    return (Decimal(fen) / 100).quantize(Decimal("0.01"))


def _within_bytes(text: str, limit: int) -> str:
    return text.encode()[:limit].decode(errors="ignore")


class WeChatPayProvider(PaymentProvider):
    name = "wechat"
    label = _("WeChat Pay")
    methods: dict[str, str | StrPromise] = {  # noqa: RUF012 - read, never changed
        "native": _("WeChat Pay: scan a QR code"),
        "h5": _("WeChat Pay on this phone"),
    }
    mobile_methods = frozenset({"h5"})
    max_refunds_per_payment = 50

    def is_configured(self) -> bool:
        config, _problems = _configuration()
        return config is not None

    def config_problems(self) -> list[str]:
        return list(_configuration()[1])

    # -- calls ---------------------------------------------------------------------------------------------------
    def _config(self) -> _Config:
        config, problems = _configuration()
        if config is None:
            raise ProviderError("WeChat Pay is not configured: " + ("; ".join(problems) or "no WECHATPAY_* settings"))
        return config

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One signed request; the verified JSON answer ({} for 204). Raises ProviderUnavailable when nothing is known
        to have happened, WeChatPayRefused for a definitive refusal."""
        shown_path = path.split("?")[0]
        try:
            status, content = _sdk_call(_sdk(self._config()).request, path, method=RequestType(method), data=body)
        except requests.RequestException as failed:
            logger.warning("WeChat Pay %s %s: %s", method, shown_path, type(failed).__name__)
            raise ProviderUnavailable(f"WeChat Pay could not be reached ({type(failed).__name__})") from None
        except _SdkFailure as failed:
            logger.error("WeChat Pay %s %s: answer not trusted: %s", method, shown_path, failed)
            raise ProviderUnavailable(f"WeChat Pay's answer could not be verified ({failed})") from None
        text = content.decode(errors="replace") if isinstance(content, bytes) else str(content)
        if 200 <= status < 300:
            try:
                answer = json.loads(text) if text.strip() else {}
            except ValueError:
                raise ProviderUnavailable("WeChat Pay answered with something that is not JSON") from None
            if not isinstance(answer, dict):
                raise ProviderUnavailable("WeChat Pay answered with JSON that is not an object")
            return answer
        try:
            error = json.loads(text)
        except ValueError:
            error = {}
        error = error if isinstance(error, dict) else {}
        code = str(error.get("code") or f"HTTP_{status}")
        message = inputs.shown(str(error.get("message") or ""), max_length=200)
        logger.warning("WeChat Pay %s %s answered %s %s: %s", method, shown_path, status, code, message)
        if status >= 500 or status == 429 or code in RETRYABLE_CODES:
            raise ProviderUnavailable(f"WeChat Pay is unavailable ({status} {code}): {message}")
        if status == 401:  # our signature was refused: nothing happened, and the same request works once it is fixed
            logger.error("WeChat Pay refused our signature: check WECHATPAY_PRIVATE_KEY and WECHATPAY_CERT_SERIAL_NO")
            raise ProviderUnavailable(f"WeChat Pay refused our signature ({code}): {message}")
        raise WeChatPayRefused(code, message, status)

    def start(
        self, attempt: AttemptLike, *, description: str, client_ip: str, return_url: str, notify_url: str
    ) -> Checkout:
        if attempt.method not in self.methods:
            raise ProviderError(f"WeChat Pay has no method {attempt.method!r}")
        if attempt.currency != "CNY":
            raise ProviderError(f"WeChat Pay takes CNY, not {attempt.currency}")
        config = self._config()
        body: dict[str, Any] = {
            "appid": config.appid,
            "mchid": config.mchid,
            "description": _within_bytes(description, DESCRIPTION_MAX_BYTES) or attempt.reference,
            "out_trade_no": attempt.reference,
            "notify_url": notify_url,
            "amount": {"total": _fen(attempt.amount), "currency": "CNY"},
        }
        if attempt.expires_at is not None:
            body["time_expire"] = attempt.expires_at.astimezone(SHANGHAI).isoformat(timespec="seconds")
        if attempt.method == "h5":
            body["scene_info"] = {"payer_client_ip": client_ip, "h5_info": {"type": "Wap"}}
        elif client_ip:
            body["scene_info"] = {"payer_client_ip": client_ip}
        answer = self._call("POST", f"/v3/pay/transactions/{attempt.method}", body)
        if attempt.method == "native":
            return Checkout(qr_text=_answer_text(answer, "code_url"))
        h5_url = _answer_text(answer, "h5_url")
        if return_url:  # where WeChat Pay sends the shopper back; its host must be the H5 domain set up for H5 pay
            h5_url += ("&" if "?" in h5_url else "?") + "redirect_url=" + quote(return_url, safe="")
        return Checkout(redirect_url=h5_url)

    def query(self, attempt: AttemptLike) -> AttemptState:
        config = self._config()
        try:
            answer = self._call("GET", f"{_order_path(attempt)}?mchid={config.mchid}")
        except WeChatPayRefused as refused:
            if refused.status == 404 or refused.code in NOT_FOUND_CODES:
                return AttemptState(GatewayState.UNKNOWN)
            raise
        status = TRADE_STATES.get(str(answer.get("trade_state")), GatewayState.UNKNOWN)
        transaction_id = str(answer.get("transaction_id") or "")
        if status != GatewayState.PAID:
            return AttemptState(status, transaction_id)
        amount = answer.get("amount")
        total = amount.get("total") if isinstance(amount, dict) else None
        if not isinstance(total, int) or isinstance(total, bool):
            raise ProviderUnavailable("WeChat Pay's paid order has no amount.total")
        return AttemptState(status, transaction_id, _yuan(total))

    def close(self, attempt: AttemptLike) -> None:
        """Closed, or never known to WeChat Pay: either way it takes no money for it. An order already paid cannot be
        closed: WeChatPayRefused (ORDERPAID); its notification or a query brings the payment."""
        config = self._config()
        try:
            self._call("POST", f"{_order_path(attempt)}/close", {"mchid": config.mchid})
        except WeChatPayRefused as refused:
            if refused.code == "ORDER_CLOSED" or refused.code in NOT_FOUND_CODES or refused.status == 404:
                return
            raise

    def refund(self, refund: RefundLike, *, notify_url: str) -> RefundAnswer:
        """Ask again with the same refund number after ProviderUnavailable: WeChat Pay refunds once per number."""
        body: dict[str, Any] = {
            "out_trade_no": refund.attempt.reference,
            "out_refund_no": refund.reference,
            "notify_url": notify_url,
            "amount": {"refund": _fen(refund.amount), "total": _fen(refund.attempt.amount), "currency": "CNY"},
        }
        reason = refund.reason.strip()[:REFUND_REASON_MAX_CHARACTERS]
        if reason:
            body["reason"] = reason
        answer = self._call("POST", "/v3/refund/domestic/refunds", body)
        status = str(answer.get("status") or "")
        if status in ("ABNORMAL", "CLOSED"):
            raise ProviderError(f"WeChat Pay answered the refund {status}")
        return RefundAnswer(provider_reference=str(answer.get("refund_id") or ""), succeeded=status == "SUCCESS")

    def query_refund(self, refund: RefundLike) -> str:
        try:
            answer = self._call("GET", f"/v3/refund/domestic/refunds/{quote(refund.reference)}")
        except WeChatPayRefused as refused:
            if refused.status == 404 or refused.code in NOT_FOUND_CODES:
                return "unknown"
            raise
        return REFUND_STATES.get(str(answer.get("status")), "unknown")

    # -- notifications -------------------------------------------------------------------------------------------
    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        config = self._config()
        signed = _notification_headers(headers, config)
        envelope = _envelope(body)
        try:
            verified = _sdk_call(_sdk(config).callback, signed, body.decode())
        except requests.RequestException:  # fetching a new platform certificate failed: let WeChat Pay ask again
            raise InvalidNotification("WeChat Pay's certificates could not be fetched to verify it", 503) from None
        except _SdkFailure as failed:
            raise InvalidNotification(f"not verified: {failed}") from None
        if not isinstance(verified, dict) or not isinstance(verified.get("resource"), dict):
            raise InvalidNotification("the signature or the encrypted resource did not verify")
        return _notification(envelope["event_type"], verified, config)

    def answer(self, *, applied: bool, message: str = "") -> tuple[int, str, bytes]:
        """204 without a body once applied (or applied before); otherwise WeChat Pay notifies again later."""
        if applied:
            return 204, "", b""
        failure = {"code": "FAIL", "message": (message or "not applied")[:64]}
        return 500, "application/json", json.dumps(failure, ensure_ascii=False).encode()

    # -- the daily bill ------------------------------------------------------------------------------------------
    def statement(self, day: date) -> list[StatementLine]:
        """The trade bill (ALL) of one day in Asia/Shanghai: every payment and every refund accepted that day.

        Status is the rail's word in lower case, with SUCCESS as "succeeded": a payment line is "succeeded" (or
        "revoked"), a refund line says where the refund stood when the bill was made ("succeeded", "processing")."""
        config = self._config()
        try:
            answer = self._call("GET", f"/v3/bill/tradebill?bill_date={day.isoformat()}&bill_type=ALL")
        except WeChatPayRefused as refused:
            if refused.code == "NO_STATEMENT_EXIST":  # no payment and no refund that day
                return []
            if refused.code == "STATEMENT_CREATING":
                raise ProviderUnavailable("WeChat Pay is still making that day's bill") from None
            raise
        url, expected = _answer_text(answer, "download_url"), _answer_text(answer, "hash_value").lower()
        if str(answer.get("hash_type", "SHA1")).upper() != "SHA1":
            raise ProviderError(f"WeChat Pay's bill has an unknown hash type {answer.get('hash_type')!r}")
        # The download is signed like any request (with our key) but its answer is not: the hash vouches for it,
        # and the URL must be on the API host, where our Authorization header may go.
        if not url.startswith(config.api_base + "/"):
            raise ProviderError("WeChat Pay's bill download_url is not on the API host")
        try:
            status, content = _sdk_call(_sdk(config).request, url[len(config.api_base) :], skip_verify=True)
        except (requests.RequestException, _SdkFailure) as failed:
            raise ProviderUnavailable(f"WeChat Pay's bill could not be downloaded ({type(failed).__name__})") from None
        data = content if isinstance(content, bytes) else str(content).encode()
        if status != 200 or hashlib.sha1(data).hexdigest() != expected:  # SHA1: the rail's documented hash
            raise ProviderUnavailable(f"WeChat Pay's bill download failed ({status} or a hash that does not match)")
        return parse_trade_bill(data)


def _order_path(attempt: AttemptLike) -> str:
    return f"/v3/pay/transactions/out-trade-no/{quote(attempt.reference, safe='')}"


def _answer_text(answer: dict[str, Any], key: str) -> str:
    value = answer.get(key)
    if not isinstance(value, str) or not value:
        raise ProviderUnavailable(f"WeChat Pay's answer has no {key}")
    return value


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:  # Django's request.headers ignores case; a plain dict may not
        value = next((item for key, item in headers.items() if key.lower() == name.lower()), None)
    return (value or "").strip()


def _notification_headers(headers: Mapping[str, str], config: _Config) -> dict[str, str]:
    """The signature headers, checked before any cryptography; spelled as the SDK looks them up."""
    signed = {
        name: _header(headers, name)
        for name in ("Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Signature", "Wechatpay-Serial")
    }
    missing = [name for name, value in signed.items() if not value]
    if missing:
        raise InvalidNotification(f"missing {', '.join(missing)}")
    signature_type = _header(headers, "Wechatpay-Signature-Type") or SIGNATURE_TYPE
    if signature_type != SIGNATURE_TYPE:
        raise InvalidNotification(f"unknown Wechatpay-Signature-Type {inputs.shown(signature_type)!r}")
    signed["Wechatpay-Signature-Type"] = signature_type
    timestamp = inputs.whole_number_from_text(signed["Wechatpay-Timestamp"])
    if timestamp is None:
        raise InvalidNotification("Wechatpay-Timestamp is not a number")
    if abs(time.time() - timestamp) > MAX_CLOCK_SKEW_SECONDS:
        raise InvalidNotification(f"Wechatpay-Timestamp is more than {MAX_CLOCK_SKEW_SECONDS} s from our clock")
    serial = signed["Wechatpay-Serial"]
    # A serial we do not hold would make the SDK fetch certificates (a request per forged notification).
    if config.public_key_id and serial != config.public_key_id:
        raise InvalidNotification("Wechatpay-Serial is not our WeChat Pay public key id")
    if not config.public_key_id and not _SERIAL.fullmatch(serial):
        raise InvalidNotification("Wechatpay-Serial is not a certificate serial number")
    return signed


def _envelope(body: bytes) -> dict[str, Any]:
    try:
        envelope = json_input.loads(body)
    except json_input.JSONRefused as refused:
        raise InvalidNotification(str(refused)) from None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("resource"), dict):
        raise InvalidNotification("the body must be an object with a resource")
    for key in ("id", "event_type"):
        if not isinstance(envelope.get(key), str) or not envelope[key]:
            raise InvalidNotification(f"{key} must be a non-empty string")
    resource = envelope["resource"]
    if envelope.get("resource_type") != "encrypt-resource" or resource.get("algorithm") != "AEAD_AES_256_GCM":
        raise InvalidNotification("the resource must be encrypted with AEAD_AES_256_GCM")
    return envelope


def _text(resource: dict[str, Any], key: str) -> str:
    value = resource.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidNotification(f"resource.{key} must be a non-empty string")
    return value


def _amount(resource: dict[str, Any], key: str) -> int:
    amount = resource.get("amount")
    value = amount.get(key) if isinstance(amount, dict) else None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 10**12:
        raise InvalidNotification(f"resource.amount.{key} must be a positive number of fen")
    return value


def _notification(event_type: str, verified: dict[str, Any], config: _Config) -> Notification:
    """What a verified, decrypted notification says, once it is known to be for our merchant (and app)."""
    resource: dict[str, Any] = verified["resource"]
    bad_text = inputs.first_bad_text(verified)
    if bad_text:
        raise InvalidNotification(f"{bad_text[0]}: {bad_text[1]}")
    if resource.get("mchid") != config.mchid:
        raise InvalidNotification("resource.mchid is not our merchant id")
    reference = _text(resource, "out_trade_no")
    if len(reference) > MAX_REFERENCE_LENGTH:
        raise InvalidNotification(f"resource.out_trade_no is longer than {MAX_REFERENCE_LENGTH} characters")
    event_id = _text(verified, "id")[:100]
    if event_type.startswith("TRANSACTION."):
        if resource.get("appid") != config.appid:
            raise InvalidNotification("resource.appid is not our app id")
        trade_state = _text(resource, "trade_state")
        if trade_state == "SUCCESS":
            kind = "payment.succeeded"
        elif trade_state in FAILED_TRADE_STATES:
            kind = "payment.failed"
        else:
            raise InvalidNotification(f"trade_state {inputs.shown(trade_state)!r} is not an outcome")
        total = _amount(resource, "total")
        return Notification(
            event_id=event_id,
            type=kind,
            reference=reference,
            amount=_yuan(total),
            currency=str(resource["amount"].get("currency") or "CNY"),
            transaction_id=str(resource.get("transaction_id") or ""),
            payload=verified,
        )
    kind = NOTIFICATION_TYPES.get(event_type, "")
    if not kind:
        raise InvalidNotification(f"unknown event_type {inputs.shown(event_type)!r}")
    if (resource.get("refund_status") == "SUCCESS") != (kind == "refund.succeeded"):
        raise InvalidNotification("resource.refund_status does not match event_type")
    return Notification(
        event_id=event_id,
        type=kind,
        reference=reference,
        amount=_yuan(_amount(resource, "refund")),
        currency="CNY",
        transaction_id=str(resource.get("transaction_id") or ""),
        refund_reference=_text(resource, "out_refund_no"),
        payload=verified,
    )


# ---------------------------------------------------------------------------------------------------------------
# The trade bill: CSV with a header line, detail lines whose every field starts with a backtick, then a summary
# header (总交易单数,…) and the summary line. Columns are found by name: the documentation warns that their order
# is not fixed, and older merchants have older names (总金额 for 应结订单金额).
# ---------------------------------------------------------------------------------------------------------------
class BillRefused(ProviderUnavailable):
    """A bill that cannot be read as documented: fetched again later rather than trusted."""


def _bill_column(header: list[str], *names: str) -> int:
    for name in names:
        if name in header:
            return header.index(name)
    raise BillRefused(f"the bill has no column {names[0]}")


def parse_trade_bill(data: bytes) -> list[StatementLine]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BillRefused("the bill is not UTF-8") from None
    rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    if not rows:
        raise BillRefused("the bill is empty")
    header = [cell.strip() for cell in rows[0]]
    summary_at = next((index for index, row in enumerate(rows) if row[0].strip() == "总交易单数"), None)
    if summary_at is None or summary_at + 1 >= len(rows):
        raise BillRefused("the bill has no summary lines")
    details = [[cell.strip().removeprefix("`") for cell in row] for row in rows[1:summary_at]]
    declared = inputs.whole_number_from_text(rows[summary_at + 1][0].strip().removeprefix("`"))
    if declared != len(details):
        raise BillRefused(f"the bill says {declared} lines and has {len(details)}")
    column = {
        "reference": _bill_column(header, "商户订单号"),
        "transaction_id": _bill_column(header, "微信订单号"),
        "trade_status": _bill_column(header, "交易状态"),
        "paid": _bill_column(header, "订单金额", "应结订单金额", "总金额"),
        "refund_reference": _bill_column(header, "商户退款单号"),
        "refunded": _bill_column(header, "申请退款金额", "退款金额"),
        "refund_status": _bill_column(header, "退款状态"),
    }
    lines = []
    for number, cells in enumerate(details, start=2):
        if len(cells) < len(header):
            raise BillRefused(f"bill line {number} has {len(cells)} fields, the header {len(header)}")
        is_refund = cells[column["trade_status"]] == "REFUND"
        word = cells[column["refund_status" if is_refund else "trade_status"]]
        try:
            amount = inputs.decimal_from_text(cells[column["refunded" if is_refund else "paid"]])
        except inputs.InputRefused:
            raise BillRefused(f"bill line {number} has no amount") from None
        lines.append(
            StatementLine(
                reference=cells[column["reference"]],
                transaction_id=cells[column["transaction_id"]],
                kind="refund" if is_refund else "payment",
                amount=amount.quantize(Decimal("0.01")),
                status="succeeded" if word == "SUCCESS" else word.lower(),
                refund_reference=cells[column["refund_reference"]] if is_refund else "",
            )
        )
    return lines


providers.register(WeChatPayProvider())
