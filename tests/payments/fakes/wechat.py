"""A fake WeChat Pay (API v3) for tests: a real HTTP server on 127.0.0.1 in a thread, never used outside tests.

It speaks the documented protocol at the HTTP level, so that the rail's SDK code runs unchanged against it:

- every request must carry `Authorization: WECHATPAY2-SHA256-RSA2048 mchid=…,nonce_str=…,signature=…,timestamp=…,
  serial_no=…`, signed with OUR merchant key (checked with its public key, and the serial and the clock) — else 401;
- every answer is signed with its own key (`Wechatpay-Timestamp/-Nonce/-Signature/-Serial/-Signature-Type`), as
  WeChat Pay's public key (PUB_KEY_ID_…) or, with `certificates=True`, as a platform certificate that it serves
  encrypted with the APIv3 key at /v3/certificates;
- Native and H5 orders (code_url, h5_url), the order query by out_trade_no, closing, refunds (out_refund_no is
  idempotent, at most 50 per order, never more than what is left; with `refund_spacing`, a new refund of an order
  sooner than that many seconds after its last is 429 FREQUENCY_LIMITED), the refund query, notifications (signed, the
  resource encrypted with AEAD_AES_256_GCM under the APIv3 key; optionally forged), and the day's trade bill
  (/v3/bill/tradebill → download_url and its SHA1; backtick-prefixed CSV with the two summary lines).

Keys are generated once per test session with `cryptography` (test_keys()). Tests drive it through the methods
below: mark_paid / mark_failed / mark_paying, complete_refund, fail_next_refunds, payment_notification /
refund_notification (with forge=…), SignedNotification.post(url), inject_bill_mismatch.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

SHANGHAI = ZoneInfo("Asia/Shanghai")
MAX_PARTIAL_REFUNDS = 50
TRADE_STATE_DESCRIPTIONS = {"SUCCESS": "支付成功", "NOTPAY": "未支付", "CLOSED": "已关闭", "PAYERROR": "支付失败"}
FORGERIES = ("bad_signature", "stale_timestamp", "wrong_amount", "wrong_mchid", "wrong_appid", "tampered_ciphertext")
OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_\-|*]{6,32}")
OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}")
BILL_HEADER = [
    "交易时间",
    "公众账号ID",
    "商户号",
    "特约商户号",
    "设备号",
    "微信订单号",
    "商户订单号",
    "用户标识",
    "交易类型",
    "交易状态",
    "付款银行",
    "货币种类",
    "应结订单金额",
    "代金券金额",
    "微信退款单号",
    "商户退款单号",
    "退款金额",
    "充值券退款金额",
    "退款类型",
    "退款状态",
    "商品名称",
    "商户数据包",
    "手续费",
    "费率",
    "订单金额",
    "申请退款金额",
    "费率备注",
]
BILL_SUMMARY_HEADER = [
    "总交易单数",
    "应结订单总金额",
    "退款总金额",
    "充值券退款总金额",
    "手续费总金额",
    "订单总金额",
    "申请退款总金额",
]


@dataclass(frozen=True)
class Keys:
    merchant: rsa.RSAPrivateKey  # ours: the shop signs its requests with it
    platform: rsa.RSAPrivateKey  # WeChat Pay's: it signs answers and notifications
    merchant_serial: str
    certificate: x509.Certificate  # the platform key as a "platform certificate"

    def merchant_private_pem(self) -> str:
        return self.merchant.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    def platform_public_pem(self) -> str:
        return (
            self.platform.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )


@lru_cache(maxsize=1)
def test_keys() -> Keys:
    """RSA 2048 keys for the whole test session (generating them takes a noticeable fraction of a second)."""
    merchant = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    platform = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA (test)")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(platform.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(platform, hashes.SHA256())
    )
    return Keys(merchant, platform, secrets.token_hex(20).upper(), certificate)


def _sign(key: rsa.RSAPrivateKey, message: str) -> str:
    return base64.b64encode(key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def _yuan(fen: int) -> str:
    return f"{Decimal(fen) / 100:.2f}"


def _transaction_id() -> str:
    return f"4200{secrets.randbelow(10**24):024d}"  # 28 digits, like WeChat Pay's


def _now() -> datetime:
    return datetime.now(SHANGHAI).replace(microsecond=0)


@dataclass
class FakeOrder:
    out_trade_no: str
    trade_type: str  # NATIVE | MWEB (H5)
    total: int  # fen
    description: str
    notify_url: str
    request: dict[str, Any]  # the body the shop sent
    pay_url: str  # code_url or h5_url
    trade_state: str = "NOTPAY"
    transaction_id: str = ""
    success_time: datetime | None = None
    openid: str = field(default_factory=lambda: "o" + secrets.token_urlsafe(20))


@dataclass
class FakeRefund:
    out_refund_no: str
    refund_id: str
    order: FakeOrder
    amount: int  # fen
    notify_url: str
    status: str  # PROCESSING | SUCCESS | ABNORMAL | CLOSED
    create_time: datetime
    success_time: datetime | None = None


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    body: dict[str, Any] | None
    status: int  # what the fake answered


@dataclass(frozen=True)
class SignedNotification:
    """A notification as WeChat Pay would POST it; post it (again) with post(url)."""

    id: str
    headers: dict[str, str]
    body: bytes
    notify_url: str  # where WeChat Pay would send it: the notify_url of the order or refund

    def post(self, url: str | None = None, *, timeout: float = 10) -> requests.Response:
        return requests.post(url or self.notify_url, data=self.body, headers=self.headers, timeout=timeout)


class FakeWeChatPay:
    def __init__(
        self,
        *,
        mchid: str = "1900000109",
        appid: str = "wxd678efh567hg6787",
        apiv3_key: str | None = None,
        certificates: bool = False,
        refunds_succeed: bool = False,
        refund_spacing: float = 0.0,
        keys: Keys | None = None,
    ):
        self.mchid = mchid
        self.appid = appid
        self.apiv3_key = apiv3_key or secrets.token_hex(16)  # 32 ASCII characters, as the merchant platform wants
        self.certificates = certificates  # sign as a platform certificate instead of as WeChat Pay's public key
        self.refunds_succeed = refunds_succeed  # a refund's own answer says SUCCESS instead of PROCESSING
        # WeChat Pay wants a minute between two refund requests of one order and answers a new one sooner with
        # 429 FREQUENCY_LIMITED (nothing refunded); off by default, a test sets the seconds it enforces.
        self.refund_spacing = refund_spacing
        self.keys = keys or test_keys()
        self.public_key_id = "PUB_KEY_ID_" + secrets.token_hex(13).upper()
        self.orders: dict[str, FakeOrder] = {}
        self.refunds: dict[str, FakeRefund] = {}
        self.received: list[Received] = []
        self.sign_answers_with_wrong_key = False
        self.answer_delay = 0.0  # seconds before each answer, to make the shop's calls time out
        self._failures: list[tuple[str, int, str]] = []  # (path prefix, status, code) for the next requests
        self._bill_changes: dict[str, Decimal | None] = {}
        self._bills: dict[str, bytes] = {}
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._cert_dir = ""

    # -- running ------------------------------------------------------------------------------------------------
    def __enter__(self) -> FakeWeChatPay:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                fake._handle(self)

            def do_POST(self) -> None:
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-wechatpay", daemon=True).start()
        self._cert_dir = tempfile.mkdtemp(prefix="wechatpay-certs-")

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        shutil.rmtree(self._cert_dir, ignore_errors=True)

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def serial(self) -> str:
        """What its answers and notifications carry as Wechatpay-Serial."""
        return format(self.keys.certificate.serial_number, "X") if self.certificates else self.public_key_id

    def environment(self) -> dict[str, str]:
        """The WECHATPAY_* settings that point the shop at this fake (as environment variables for a worker)."""
        return {
            "WECHATPAY_MCHID": self.mchid,
            "WECHATPAY_APPID": self.appid,
            "WECHATPAY_PRIVATE_KEY": self.keys.merchant_private_pem(),
            "WECHATPAY_CERT_SERIAL_NO": self.keys.merchant_serial,
            "WECHATPAY_APIV3_KEY": self.apiv3_key,
            "WECHATPAY_PUBLIC_KEY": "" if self.certificates else self.keys.platform_public_pem(),
            "WECHATPAY_PUBLIC_KEY_ID": "" if self.certificates else self.public_key_id,
            "WECHATPAY_CERT_DIR": self._cert_dir,
            "WECHATPAY_API_BASE": self.url,
        }

    def configure(self, settings: Any) -> None:
        """Point Django's settings (pytest-django's `settings` fixture) at this fake."""
        for name, value in self.environment().items():
            setattr(settings, name, value)

    # -- what tests make happen ---------------------------------------------------------------------------------
    def mark_paid(self, out_trade_no: str, *, at: datetime | None = None) -> SignedNotification:
        """The shopper paid (whatever the order's state: a payment racing a close is possible). Returns the
        TRANSACTION.SUCCESS notification, not yet delivered."""
        with self._lock:
            order = self.orders[out_trade_no]
            order.trade_state = "SUCCESS"
            order.transaction_id = order.transaction_id or _transaction_id()
            order.success_time = (at or _now()).astimezone(SHANGHAI).replace(microsecond=0)
        return self.payment_notification(out_trade_no)

    def mark_failed(self, out_trade_no: str) -> None:
        """The payment failed (PAYERROR). WeChat Pay sends no notification for it; a query tells."""
        with self._lock:
            self.orders[out_trade_no].trade_state = "PAYERROR"

    def mark_paying(self, out_trade_no: str) -> None:
        """The shopper is entering a password (USERPAYING)."""
        with self._lock:
            self.orders[out_trade_no].trade_state = "USERPAYING"

    def complete_refund(self, out_refund_no: str, status: str = "SUCCESS") -> SignedNotification:
        """The refund ended (SUCCESS, ABNORMAL or CLOSED); returns its REFUND.* notification, not yet delivered."""
        with self._lock:
            refund = self.refunds[out_refund_no]
            refund.status = status
            refund.success_time = _now() if status == "SUCCESS" else None
        return self.refund_notification(out_refund_no)

    def fail_next_refunds(self, count: int, *, code: str = "SYSTEM_ERROR", status: int = 500) -> None:
        """Answer the next `count` refund requests with this error (nothing is refunded)."""
        self.fail_next(count, path="/v3/refund/domestic/refunds", code=code, status=status)

    def fail_next(self, count: int, *, path: str = "/", code: str = "SYSTEM_ERROR", status: int = 500) -> None:
        with self._lock:
            self._failures.extend([(path, status, code)] * count)

    def inject_bill_mismatch(self, out_trade_no: str, amount: Decimal | None = None) -> None:
        """In the bill, show this payment with another amount, or leave it out (amount None). An out_trade_no the
        fake does not know gets a payment line of its own (it needs an amount)."""
        with self._lock:
            self._bill_changes[out_trade_no] = amount

    @property
    def refund_requests(self) -> list[dict[str, Any]]:
        """Every refund request received, answered or not, in order."""
        return [r.body or {} for r in self.received if r.method == "POST" and r.path == "/v3/refund/domestic/refunds"]

    # -- notifications ------------------------------------------------------------------------------------------
    def payment_notification(self, out_trade_no: str, *, forge: str | None = None) -> SignedNotification:
        """The TRANSACTION.SUCCESS notification of a paid order (WeChat Pay notifies successful payments only)."""
        order = self.orders[out_trade_no]
        if order.trade_state not in ("SUCCESS", "REFUND"):
            raise ValueError(f"{out_trade_no} is {order.trade_state}: WeChat Pay notifies successful payments only")
        resource = self._transaction(order)
        resource.update(trade_state="SUCCESS", trade_state_desc="支付成功")
        if forge == "wrong_amount":
            resource["amount"]["total"] += 1
            resource["amount"]["payer_total"] += 1
        return self._notification("TRANSACTION.SUCCESS", "transaction", "支付成功", resource, order.notify_url, forge)

    def refund_notification(self, out_refund_no: str, *, forge: str | None = None) -> SignedNotification:
        if forge in ("wrong_appid", "wrong_amount"):
            raise ValueError(f"a refund notification has nothing to forge as {forge}")
        refund = self.refunds[out_refund_no]
        resource = self._refund_resource(refund)
        resource.pop("create_time", None)
        resource.pop("channel", None)
        summary = {"SUCCESS": "退款成功", "ABNORMAL": "退款异常", "CLOSED": "退款关闭"}.get(refund.status, "退款")
        return self._notification(f"REFUND.{refund.status}", "refund", summary, resource, refund.notify_url, forge)

    def _notification(
        self, event_type: str, kind: str, summary: str, resource: dict[str, Any], notify_url: str, forge: str | None
    ) -> SignedNotification:
        if forge is not None and forge not in (*FORGERIES, "unknown_serial"):
            raise ValueError(f"unknown forgery {forge!r}")
        if forge == "wrong_mchid":
            resource["mchid"] = "1900000999"
        if forge == "wrong_appid":
            resource["appid"] = "wx0000000000000000"
        nonce = secrets.token_hex(6)  # 12 characters: AEAD_AES_256_GCM's 12-byte nonce
        sealed = AESGCM(self.apiv3_key.encode()).encrypt(nonce.encode(), json.dumps(resource).encode(), kind.encode())
        if forge == "tampered_ciphertext":
            sealed = bytes([sealed[0] ^ 1]) + sealed[1:]
        event_id = f"EV-{secrets.token_hex(10)}"
        envelope = {
            "id": event_id,
            "create_time": _now().isoformat(),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": summary,
            "resource": {
                "original_type": kind,
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": base64.b64encode(sealed).decode(),
                "associated_data": kind,
                "nonce": nonce,
            },
        }
        body = json.dumps(envelope, ensure_ascii=False)
        timestamp = int(time.time()) - (600 if forge == "stale_timestamp" else 0)
        key = self.keys.merchant if forge == "bad_signature" else self.keys.platform
        headers = self._signature_headers(body, timestamp=timestamp, key=key)
        if forge == "unknown_serial":
            headers["Wechatpay-Serial"] = "PUB_KEY_ID_" + "0" * 26 if not self.certificates else "1234ABCD"
        headers["Content-Type"] = "application/json"
        return SignedNotification(event_id, headers, body.encode(), notify_url)

    def _signature_headers(
        self, body: str, *, timestamp: int | None = None, key: rsa.RSAPrivateKey | None = None
    ) -> dict[str, str]:
        timestamp = int(time.time()) if timestamp is None else timestamp
        nonce = secrets.token_hex(16).upper()
        if key is None:
            key = self.keys.merchant if self.sign_answers_with_wrong_key else self.keys.platform
        return {
            "Wechatpay-Timestamp": str(timestamp),
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": _sign(key, f"{timestamp}\n{nonce}\n{body}\n"),
            "Wechatpay-Serial": self.serial,
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
        }

    # -- resources as the API shows them ------------------------------------------------------------------------
    def _transaction(self, order: FakeOrder) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "appid": self.appid,
            "mchid": self.mchid,
            "out_trade_no": order.out_trade_no,
            "trade_type": order.trade_type,
            "trade_state": order.trade_state,
            "trade_state_desc": TRADE_STATE_DESCRIPTIONS.get(order.trade_state, ""),
            "amount": {"total": order.total, "currency": "CNY"},
        }
        if order.trade_state in ("SUCCESS", "REFUND"):
            shown.update(
                transaction_id=order.transaction_id,
                bank_type="OTHERS",
                attach="",
                success_time=order.success_time.isoformat() if order.success_time else "",
                payer={"openid": order.openid},
            )
            shown["amount"].update(payer_total=order.total, payer_currency="CNY")
        return shown

    def _refund_resource(self, refund: FakeRefund) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "mchid": self.mchid,
            "refund_id": refund.refund_id,
            "out_refund_no": refund.out_refund_no,
            "transaction_id": refund.order.transaction_id,
            "out_trade_no": refund.order.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "create_time": refund.create_time.isoformat(),
            "refund_status": refund.status,
            "status": refund.status,
            "amount": {
                "total": refund.order.total,
                "refund": refund.amount,
                "payer_total": refund.order.total,
                "payer_refund": refund.amount,
                "currency": "CNY",
            },
        }
        if refund.success_time:
            shown["success_time"] = refund.success_time.isoformat()
        return shown

    # -- HTTP ---------------------------------------------------------------------------------------------------
    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        method, target = request.command, request.path
        path = urlsplit(target).path
        query = {key: values[0] for key, values in parse_qs(urlsplit(target).query).items()}
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        body = parsed if isinstance(parsed, dict) else None
        answer: dict[str, Any] | bytes | None
        with self._lock:
            problem = self._authorization_problem(request.headers.get("Authorization", ""), method, target, raw)
            if problem:
                status, answer = 401, {"code": "SIGN_ERROR", "message": problem}
            else:
                status, answer = self._failure(path) or self._route(method, path, query, body)
            self.received.append(Received(method, path, body, status))
        time.sleep(self.answer_delay)
        if isinstance(answer, bytes):  # a bill file: not signed, its SHA1 was given with download_url
            self._send(request, status, answer, "application/octet-stream", signed=False)
        else:
            text = "" if answer is None else json.dumps(answer, ensure_ascii=False)
            self._send(request, status, text.encode(), "application/json; charset=utf-8", signed=True)

    def _send(self, request: BaseHTTPRequestHandler, status: int, data: bytes, content_type: str, signed: bool) -> None:
        request.send_response(status)
        if data:
            request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(data)))
        request.send_header("Request-ID", secrets.token_hex(16))
        if signed:
            for name, value in self._signature_headers(data.decode()).items():
                request.send_header(name, value)
        request.end_headers()
        request.wfile.write(data)

    def _authorization_problem(self, authorization: str, method: str, target: str, raw: bytes) -> str:
        scheme, _, params = authorization.partition(" ")
        if scheme != "WECHATPAY2-SHA256-RSA2048":
            return "Authorization is not WECHATPAY2-SHA256-RSA2048"
        fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
        if fields.get("mchid") != self.mchid:
            return "mchid is not this merchant"
        if fields.get("serial_no", "").upper() != self.keys.merchant_serial:
            return "serial_no is not the merchant certificate's"
        if not fields.get("timestamp", "").isdigit() or abs(time.time() - int(fields["timestamp"])) > 300:
            return "timestamp is more than 5 minutes away"
        message = f"{method}\n{target}\n{fields['timestamp']}\n{fields.get('nonce_str', '')}\n{raw.decode()}\n"
        try:
            signature = base64.b64decode(fields.get("signature", ""), validate=True)
            self.keys.merchant.public_key().verify(signature, message.encode(), padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            return "the signature does not verify with the merchant's public key"
        return ""

    def _failure(self, path: str) -> tuple[int, dict[str, Any]] | None:
        for index, (prefix, status, code) in enumerate(self._failures):
            if path.startswith(prefix):
                del self._failures[index]
                return status, {"code": code, "message": "injected failure"}
        return None

    def _route(
        self, method: str, path: str, query: dict[str, str], body: dict[str, Any] | None
    ) -> tuple[int, dict[str, Any] | bytes | None]:
        if method == "POST" and (found := re.fullmatch(r"/v3/pay/transactions/(native|h5)", path)):
            return self._create_order(found.group(1), body or {})
        if found := re.fullmatch(r"/v3/pay/transactions/out-trade-no/([^/]+)", path):
            order = self.orders.get(found.group(1))
            if method != "GET" or query.get("mchid") != self.mchid:
                return 400, {"code": "PARAM_ERROR", "message": "mchid is missing or not this merchant"}
            if order is None:
                return 404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"}
            return 200, self._transaction(order)
        if method == "POST" and (found := re.fullmatch(r"/v3/pay/transactions/out-trade-no/([^/]+)/close", path)):
            return self._close(found.group(1), body or {})
        if method == "POST" and path == "/v3/refund/domestic/refunds":
            return self._create_refund(body or {})
        if method == "GET" and (found := re.fullmatch(r"/v3/refund/domestic/refunds/([^/]+)", path)):
            refund = self.refunds.get(found.group(1))
            if refund is None:
                return 404, {"code": "RESOURCE_NOT_EXISTS", "message": "退款单不存在"}
            return 200, self._refund_resource(refund)
        if method == "GET" and path == "/v3/bill/tradebill":
            return self._apply_for_bill(query)
        if method == "GET" and path == "/v3/billdownload/file":
            bill = self._bills.get(query.get("token", ""))
            return (200, bill) if bill is not None else (400, {"code": "INVALID_REQUEST", "message": "token"})
        if method == "GET" and path == "/v3/certificates":
            return 200, self._certificates()
        return 404, {"code": "NOT_FOUND", "message": f"no such API: {method} {path}"}

    def _create_order(self, kind: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        problem = _order_problem(kind, body)
        if body.get("appid") != self.appid or body.get("mchid") != self.mchid:
            return 400, {"code": "APPID_MCHID_NOT_MATCH", "message": "appid和mch_id不匹配"}
        if problem:
            return 400, {"code": "PARAM_ERROR", "message": problem}
        out_trade_no, total = body["out_trade_no"], body["amount"]["total"]
        trade_type = "NATIVE" if kind == "native" else "MWEB"
        existing = self.orders.get(out_trade_no)
        if existing is not None:
            if existing.trade_state in ("SUCCESS", "REFUND"):
                return 400, {"code": "ORDERPAID", "message": "该订单已支付"}
            if existing.trade_state == "CLOSED":
                return 400, {"code": "ORDER_CLOSED", "message": "订单已关闭"}
            if existing.total != total or existing.trade_type != trade_type:
                return 400, {"code": "OUT_TRADE_NO_USED", "message": "商户订单号重复"}
            order = existing  # the same order asked for again: the same code_url / h5_url
        else:
            token = secrets.token_hex(8)
            pay_url = (
                f"weixin://wxpay/bizpayurl?pr={token}"
                if kind == "native"
                else f"https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx{token}&package={secrets.randbelow(10**10)}"
            )
            order = FakeOrder(out_trade_no, trade_type, total, body["description"], body["notify_url"], body, pay_url)
            self.orders[out_trade_no] = order
        return 200, {"code_url" if kind == "native" else "h5_url": order.pay_url}

    def _close(self, out_trade_no: str, body: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        if body.get("mchid") != self.mchid:
            return 400, {"code": "PARAM_ERROR", "message": "mchid is missing or not this merchant"}
        order = self.orders.get(out_trade_no)
        if order is None:
            return 404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"}
        if order.trade_state in ("SUCCESS", "REFUND"):
            return 400, {"code": "ORDERPAID", "message": "订单已支付"}
        if order.trade_state == "CLOSED":
            return 400, {"code": "ORDER_CLOSED", "message": "订单已关闭"}
        order.trade_state = "CLOSED"
        return 204, None

    def _create_refund(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        amount = body.get("amount") if isinstance(body.get("amount"), dict) else {}
        out_refund_no, refund, total = body.get("out_refund_no"), amount.get("refund"), amount.get("total")
        if not isinstance(out_refund_no, str) or not OUT_REFUND_NO.fullmatch(out_refund_no):
            return 400, {"code": "PARAM_ERROR", "message": "out_refund_no"}
        if not isinstance(refund, int) or refund <= 0 or not isinstance(total, int) or amount.get("currency") != "CNY":
            return 400, {"code": "PARAM_ERROR", "message": "amount.refund, amount.total and amount.currency"}
        order = self.orders.get(str(body.get("out_trade_no")))
        if order is None or order.trade_state not in ("SUCCESS", "REFUND"):
            return 404, {"code": "RESOURCE_NOT_EXISTS", "message": "订单不存在或未支付"}
        if total != order.total:
            return 400, {"code": "INVALID_REQUEST", "message": "订单金额与原订单不一致"}
        existing = self.refunds.get(out_refund_no)
        if existing is not None:  # the same refund number refunds once
            if existing.amount != refund or existing.order is not order:
                return 400, {"code": "INVALID_REQUEST", "message": "同一退款单号的请求参数不一致"}
            return 200, self._refund_resource(existing)
        order_refunds = [r for r in self.refunds.values() if r.order is order]
        last = max((r.create_time for r in order_refunds), default=None)
        if last is not None and (_now() - last).total_seconds() < self.refund_spacing:
            return 429, {"code": "FREQUENCY_LIMITED", "message": "退款请求频率过高，请稍后重试"}
        if len(order_refunds) >= MAX_PARTIAL_REFUNDS:
            return 400, {"code": "INVALID_REQUEST", "message": "该订单已超过可退款的最大次数（50次）"}
        refunded = sum(r.amount for r in order_refunds if r.status not in ("CLOSED", "ABNORMAL"))
        if refunded + refund > order.total:
            return 400, {"code": "INVALID_REQUEST", "message": "申请退款金额超过订单可退金额"}
        created = FakeRefund(
            out_refund_no=out_refund_no,
            refund_id="50" + secrets.token_hex(14),
            order=order,
            amount=refund,
            notify_url=str(body.get("notify_url") or order.notify_url),
            status="SUCCESS" if self.refunds_succeed else "PROCESSING",
            create_time=_now(),
            success_time=_now() if self.refunds_succeed else None,
        )
        self.refunds[out_refund_no] = created
        order.trade_state = "REFUND"
        return 200, self._refund_resource(created)

    def _certificates(self) -> dict[str, Any]:
        pem = self.keys.certificate.public_bytes(serialization.Encoding.PEM)
        nonce = secrets.token_hex(6)
        sealed = AESGCM(self.apiv3_key.encode()).encrypt(nonce.encode(), pem, b"certificate")
        certificate = self.keys.certificate
        return {
            "data": [
                {
                    "serial_no": format(certificate.serial_number, "X"),
                    "effective_time": certificate.not_valid_before_utc.astimezone(SHANGHAI).isoformat(),
                    "expire_time": certificate.not_valid_after_utc.astimezone(SHANGHAI).isoformat(),
                    "encrypt_certificate": {
                        "algorithm": "AEAD_AES_256_GCM",
                        "nonce": nonce,
                        "associated_data": "certificate",
                        "ciphertext": base64.b64encode(sealed).decode(),
                    },
                }
            ]
        }

    # -- the trade bill -----------------------------------------------------------------------------------------
    def _apply_for_bill(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        try:
            day = date.fromisoformat(query.get("bill_date", ""))
        except ValueError:
            return 400, {"code": "PARAM_ERROR", "message": "bill_date"}
        if query.get("bill_type", "ALL") != "ALL":
            return 400, {"code": "PARAM_ERROR", "message": "this fake makes ALL bills only"}
        data = self.bill(day)
        if data is None:
            return 400, {"code": "NO_STATEMENT_EXIST", "message": "账单文件不存在"}
        token = secrets.token_urlsafe(16)
        self._bills[token] = data
        return 200, {
            "hash_type": "SHA1",
            "hash_value": hashlib.sha1(data).hexdigest(),
            "download_url": f"{self.url}/v3/billdownload/file?token={token}",
        }

    def bill(self, day: date) -> bytes | None:
        """The ALL trade bill of `day` (Asia/Shanghai) as the download serves it, or None when it would have no
        line (WeChat Pay answers NO_STATEMENT_EXIST). Unlike WeChat Pay, which makes it the next morning, the fake
        serves the bill of today too."""
        with self._lock:
            payments = [o for o in self.orders.values() if o.success_time and o.success_time.date() == day]
            refunds = [r for r in self.refunds.values() if r.create_time.date() == day]
            lines = []
            for order in payments:
                if order.out_trade_no not in self._bill_changes:
                    lines.append(self._bill_payment_line(order, order.total))
                elif (shown := self._bill_changes[order.out_trade_no]) is not None:
                    lines.append(self._bill_payment_line(order, int(shown * 100)))
            known = {o.out_trade_no for o in self.orders.values()}
            for out_trade_no, extra in self._bill_changes.items():
                if out_trade_no not in known and extra is not None:
                    stranger = FakeOrder(out_trade_no, "NATIVE", int(extra * 100), "?", "", {}, "", "SUCCESS")
                    stranger.transaction_id, stranger.success_time = _transaction_id(), _now()
                    lines.append(self._bill_payment_line(stranger, stranger.total))
            lines += [self._bill_refund_line(refund) for refund in refunds]
        if not lines:
            return None
        column = {name: BILL_HEADER.index(name) for name in ("交易状态", "订单金额", "申请退款金额", "手续费")}
        paid = sum(Decimal(line[column["订单金额"]]) for line in lines if line[column["交易状态"]] == "SUCCESS")
        refunded = sum(Decimal(line[column["申请退款金额"]]) for line in lines if line[column["交易状态"]] == "REFUND")
        fees = sum(Decimal(line[column["手续费"]]) for line in lines)
        summary = [
            f"{len(lines)}",
            f"{paid:.2f}",
            f"{refunded:.2f}",
            "0.00",
            f"{fees:.5f}",
            f"{paid:.2f}",
            f"{refunded:.2f}",
        ]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(BILL_HEADER)
        writer.writerows([["`" + cell for cell in line] for line in lines])
        writer.writerow(BILL_SUMMARY_HEADER)
        writer.writerow(["`" + cell for cell in summary])
        return out.getvalue().encode()

    def _bill_common(self, order: FakeOrder, at: datetime) -> list[str]:
        """The first columns of BILL_HEADER, up to 交易类型; a normal merchant's 特约商户号 is 0."""
        when = at.strftime("%Y-%m-%d %H:%M:%S")
        ids = [order.transaction_id, order.out_trade_no, order.openid]
        return [when, self.appid, self.mchid, "0", "", *ids, order.trade_type]

    def _bill_payment_line(self, order: FakeOrder, amount: int) -> list[str]:
        fee = f"{Decimal(amount) * Decimal('0.00006'):.5f}"
        assert order.success_time is not None
        return [
            *self._bill_common(order, order.success_time), "SUCCESS", "OTHERS", "CNY", _yuan(amount), "0.00",
            "0", "0", "0.00", "0.00", "", "", order.description, "", fee, "0.60%", _yuan(amount), "0.00", "",
        ]  # fmt: skip

    def _bill_refund_line(self, refund: FakeRefund) -> list[str]:
        order = refund.order
        fee = f"-{Decimal(refund.amount) * Decimal('0.00006'):.5f}"
        return [
            *self._bill_common(order, refund.create_time), "REFUND", "OTHERS", "CNY", _yuan(order.total), "0.00",
            refund.refund_id, refund.out_refund_no, _yuan(refund.amount), "0.00", "ORIGINAL", refund.status,
            order.description, "", fee, "0.60%", _yuan(order.total), _yuan(refund.amount), "",
        ]  # fmt: skip


def _order_problem(kind: str, body: dict[str, Any]) -> str:
    """What WeChat Pay's parameter checks would refuse in a Native or H5 order (PARAM_ERROR)."""
    description, amount = body.get("description"), body.get("amount")
    if not isinstance(description, str) or not 0 < len(description.encode()) <= 127:
        return "description: 1 to 127 bytes"
    if not isinstance(body.get("out_trade_no"), str) or not OUT_TRADE_NO.fullmatch(body["out_trade_no"]):
        return "out_trade_no: 6 to 32 of 0-9 A-Z a-z _ - | *"
    notify_url = body.get("notify_url")
    if not isinstance(notify_url, str) or not re.match(r"https?://[^?]+$", notify_url):
        return "notify_url: an absolute URL without a query"
    if not isinstance(amount, dict) or not isinstance(amount.get("total"), int) or amount["total"] <= 0:
        return "amount.total: a positive whole number of fen"
    if amount.get("currency", "CNY") != "CNY":
        return "amount.currency: CNY"
    if "time_expire" in body:
        try:
            if datetime.fromisoformat(body["time_expire"]).utcoffset() is None:
                return "time_expire: RFC 3339 with a time zone"
        except (TypeError, ValueError):
            return "time_expire: RFC 3339"
    scene = body.get("scene_info")
    if kind == "h5" and not (
        isinstance(scene, dict)
        and isinstance(scene.get("payer_client_ip"), str)
        and isinstance(scene.get("h5_info"), dict)
        and scene["h5_info"].get("type")
    ):
        return "scene_info.payer_client_ip and scene_info.h5_info.type are required for H5"
    return ""


@contextmanager
def wechat_pay_fake(settings: Any = None, **options: Any) -> Iterator[FakeWeChatPay]:
    """A running fake; with pytest-django's `settings`, the shop's WECHATPAY_* settings point at it meanwhile."""
    with FakeWeChatPay(**options) as fake:
        if settings is not None:
            fake.configure(settings)
        yield fake
