"""A fake Alipay open-platform gateway (openapi.alipay.com/gateway.do) for tests, at the HTTP level.

A real HTTP server on 127.0.0.1 (a free port, a thread). It holds Alipay's side of the keys: it checks every
request's RSA2 `sign` with the shop's app public key and signs its answers, notifications and return redirects with
a key of its own, generated for the test session. Trades and refunds live in memory. What it implements, and where
it is simpler than Alipay, is listed in docs/payments.md ("Alipay", "The fake gateway").

The Python API for tests (see the `fake_alipay` fixture at the end):
- `open(url)` GETs a page/wap pay URL as the shopper's browser would: (status, html); the trade then exists
- `pay(out_trade_no, notify=False, late=False)`: the shopper pays (late: even a closed or expired trade)
- `close_trade(out_trade_no, notify=False)`: Alipay closes an unpaid trade (this rail's "declined")
- `fail_next_refunds(n, sub_code)`, `fail_next_requests(n, status)`, `stall_next_requests(n, seconds)`
- `payment_notification(...)`, `refund_notification(...)` (optionally forged) and `post_notification(params, url)`
- `inject_bill_mismatch(...)` and `bill_zip(day)`; `trades`, `requests` and `refund_requests()` to look at
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import html
import io
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
import zipfile
from base64 import b64decode, b64encode
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit
from zoneinfo import ZoneInfo

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.utils import timezone

SHANGHAI = ZoneInfo("Asia/Shanghai")
ALIPAY_TIME = "%Y-%m-%d %H:%M:%S"
APP_ID = "2021000000000001"
SELLER_ID = "2088000000000001"
PAY_PRODUCTS = {"alipay.trade.page.pay": "FAST_INSTANT_TRADE_PAY", "alipay.trade.wap.pay": "QUICK_WAP_WAY"}
BUYER_ID = "2088102177846880"
BUYER_LOGON_ID = "buy***@example.com"

Forgery = Literal["signature", "total_amount", "app_id", "seller_id"]


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_pem(key: rsa.RSAPublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def signed_text(params: Mapping[str, str], *, without: tuple[str, ...], skip_empty: bool = True) -> str:
    """Alipay's string to sign: the parameters sorted by name as name=value, joined by &. A request's empty values
    are left out; a notification is signed whole (as Alipay's SDKs check it)."""
    return "&".join(
        f"{name}={value}" for name, value in sorted(params.items()) if name not in without and (value or not skip_empty)
    )


def _beijing(moment: datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime(ALIPAY_TIME)


def _yuan(amount: Decimal) -> str:
    return f"{amount:.2f}"


@dataclass
class FakeRefund:
    out_request_no: str
    amount: Decimal
    refunded_at: datetime


@dataclass
class FakeTrade:
    out_trade_no: str
    total_amount: Decimal
    subject: str
    api: str  # alipay.trade.page.pay | alipay.trade.wap.pay
    notify_url: str
    return_url: str
    time_expire: datetime | None
    trade_no: str
    opened_at: datetime
    status: str = "WAIT_BUYER_PAY"
    paid_at: datetime | None = None
    closed_at: datetime | None = None
    refunds: dict[str, FakeRefund] = field(default_factory=dict)  # by out_request_no, in the order made

    @property
    def refunded(self) -> Decimal:
        return sum((refund.amount for refund in self.refunds.values()), Decimal("0.00"))


@dataclass
class FakeRequest:
    """One request whose signature the gateway accepted: its method, biz_content and common parameters, and the
    answer object it gave (a success or a business error)."""

    api: str
    biz: dict[str, Any]
    params: dict[str, str]
    answer: dict[str, Any] = field(default_factory=dict)


class GatewayRefusal(Exception):
    def __init__(self, code: str, msg: str, sub_code: str, sub_msg: str):
        super().__init__(f"{code} {sub_code}")
        self.body = {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg}


def _business(sub_code: str, sub_msg: str) -> GatewayRefusal:
    return GatewayRefusal("40004", "Business Failed", sub_code, sub_msg)


def _invalid(sub_code: str, sub_msg: str) -> GatewayRefusal:
    return GatewayRefusal("40002", "Invalid Arguments", sub_code, sub_msg)


class FakeAlipay:
    def __init__(
        self,
        *,
        app_private_key: rsa.RSAPrivateKey,
        app_id: str = APP_ID,
        seller_id: str = SELLER_ID,
        alipay_key: rsa.RSAPrivateKey | None = None,
    ):
        # The shop's key pair: the fake checks with the public half (as Alipay does with the uploaded 应用公钥);
        # the private half is here only to hand to the site's settings.
        self.app_private_key_pem = private_pem(app_private_key)
        self._app_public_key = app_private_key.public_key()
        self._alipay_key = alipay_key or new_rsa_key()
        self.alipay_public_key_pem = public_pem(self._alipay_key.public_key())
        self.app_id = app_id
        self.seller_id = seller_id
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self.reset()

    # --- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> FakeAlipay:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fake-alipay", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def reset(self) -> None:
        with self._lock:
            self.trades: dict[str, FakeTrade] = {}
            self.requests: list[FakeRequest] = []
            self._failing_refunds: list[str] = []
            self._failing_requests: list[int] = []
            self._stalling_requests: list[float] = []
            self._bill_changes: dict[str, Decimal | None] = {}
            self._bill_extra: list[tuple[str, str, Decimal]] = []

    @property
    def base_url(self) -> str:
        assert self._server is not None, "the fake Alipay gateway is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        """The gateway, as ALIPAY_GATEWAY."""
        return f"{self.base_url}/gateway.do"

    def settings(self) -> dict[str, Any]:
        """The Django settings that point the site at this gateway with the test session's keys."""
        return {
            "ALIPAY_APP_ID": self.app_id,
            "ALIPAY_APP_PRIVATE_KEY": self.app_private_key_pem,
            "ALIPAY_PUBLIC_KEY": self.alipay_public_key_pem,
            "ALIPAY_SELLER_ID": self.seller_id,
            "ALIPAY_GATEWAY": self.url,
        }

    def environ(self) -> dict[str, str]:
        """The same as environment variables, for a worker or gunicorn started by a test."""
        return {name: str(value) for name, value in self.settings().items()}

    # --- what the shopper and Alipay do ------------------------------------------------------------------------

    def open(self, url: str) -> tuple[int, str]:
        """GET a page/wap pay URL as the shopper's browser would; the cashier page (or Alipay's error page)."""
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def pay(self, out_trade_no: str, *, notify: bool = False, late: bool = False) -> FakeTrade:
        """The shopper pays an opened trade; with notify, Alipay's notification goes to its notify_url.

        `late`: pay a trade already closed or past its time_expire, as when the shopper's payment and the shop's
        close crossed on the way (the shop then gets a success for an attempt it gave up).
        """
        with self._lock:
            trade = self.trades[out_trade_no] if late else self._open_trade(out_trade_no)
            trade.status, trade.paid_at, trade.closed_at = "TRADE_SUCCESS", timezone.now(), None
        if notify:
            self.post_notification(self.payment_notification(out_trade_no))
        return trade

    def close_trade(self, out_trade_no: str, *, notify: bool = False) -> FakeTrade:
        """Alipay closes an unpaid trade (time_expire passed, or the shopper gave up): the rail's "declined"."""
        with self._lock:
            trade = self._open_trade(out_trade_no)
            trade.status, trade.closed_at = "TRADE_CLOSED", timezone.now()
        if notify:
            self.post_notification(self.payment_notification(out_trade_no))
        return trade

    def fail_next_refunds(self, count: int, sub_code: str = "ACQ.SYSTEM_ERROR") -> None:
        """The next `count` refund requests are answered with this error (signed, code 40004); nothing refunded."""
        with self._lock:
            self._failing_refunds.extend([sub_code] * count)

    def fail_next_requests(self, count: int, *, status: int = 502) -> None:
        """The next `count` gateway requests of any method get this HTTP status and an HTML body."""
        with self._lock:
            self._failing_requests.extend([status] * count)

    def stall_next_requests(self, count: int, seconds: float) -> None:
        """The next `count` gateway requests are answered only after `seconds` (past the client's timeout)."""
        with self._lock:
            self._stalling_requests.extend([seconds] * count)

    def refund_requests(self) -> list[FakeRequest]:
        return [request for request in self.requests if request.api == "alipay.trade.refund"]

    def _open_trade(self, out_trade_no: str) -> FakeTrade:
        trade = self.trades.get(out_trade_no)
        if trade is None:
            raise LookupError(f"{out_trade_no}: no such trade (Alipay has one once the shopper opened the pay URL)")
        self._expire(trade)
        if trade.status != "WAIT_BUYER_PAY":
            raise LookupError(f"{out_trade_no} is {trade.status}, not WAIT_BUYER_PAY")
        return trade

    def _expire(self, trade: FakeTrade) -> None:
        if trade.status == "WAIT_BUYER_PAY" and trade.time_expire and timezone.now() >= trade.time_expire:
            trade.status, trade.closed_at = "TRADE_CLOSED", trade.time_expire

    # --- notifications -----------------------------------------------------------------------------------------

    def payment_notification(
        self,
        out_trade_no: str,
        *,
        trade_status: str | None = None,
        forge: Forgery | None = None,
        notify_time: datetime | None = None,
    ) -> dict[str, str]:
        """The asynchronous notification of a trade's status (its current one unless given), signed."""
        trade = self.trades[out_trade_no]
        status = trade_status or trade.status
        params = self._notification_base(trade, status, notify_time)
        if trade.paid_at:
            paid = _yuan(trade.total_amount)
            params |= {
                "gmt_payment": _beijing(trade.paid_at),
                "receipt_amount": paid,
                "invoice_amount": paid,
                "buyer_pay_amount": paid,
                "point_amount": "0.00",
                "fund_bill_list": json.dumps([{"amount": paid, "fundChannel": "ALIPAYACCOUNT"}]),
            }
        if trade.closed_at:
            params["gmt_close"] = _beijing(trade.closed_at)
        return self._signed_notification(params, forge)

    def refund_notification(
        self, out_trade_no: str, out_request_no: str, *, forge: Forgery | None = None
    ) -> dict[str, str]:
        """The notification Alipay sends after a refund: out_biz_no names it, refund_fee is the total refunded."""
        trade = self.trades[out_trade_no]
        refunds = list(trade.refunds.values())
        index = [refund.out_request_no for refund in refunds].index(out_request_no)
        refunded_so_far = sum((refund.amount for refund in refunds[: index + 1]), Decimal("0.00"))
        status = "TRADE_CLOSED" if refunded_so_far == trade.total_amount else "TRADE_SUCCESS"
        params = self._notification_base(trade, status, None, out_biz_no=out_request_no)
        params |= {
            "out_biz_no": out_request_no,
            "refund_fee": _yuan(refunded_so_far),
            "gmt_refund": refunds[index].refunded_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
        }
        if trade.paid_at:
            params["gmt_payment"] = _beijing(trade.paid_at)
        return self._signed_notification(params, forge)

    def post_notification(self, params: Mapping[str, str], url: str | None = None) -> tuple[int, bytes]:
        """POST a notification as Alipay does (a UTF-8 form) to `url`, by default the trade's notify_url."""
        target = url or self.trades[params["out_trade_no"]].notify_url
        request = urllib.request.Request(
            target,
            data=urlencode(params).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def _notification_base(
        self, trade: FakeTrade, status: str, notify_time: datetime | None, *, out_biz_no: str = ""
    ) -> dict[str, str]:
        return {
            "notify_time": _beijing(notify_time or timezone.now()),
            "notify_type": "trade_status_sync",
            # Redelivering one notification keeps its notify_id.
            "notify_id": hashlib.sha256(f"{trade.trade_no}|{status}|{out_biz_no}".encode()).hexdigest()[:34],
            "charset": "utf-8",
            "version": "1.0",
            "sign_type": "RSA2",
            "app_id": self.app_id,
            "auth_app_id": self.app_id,
            "seller_id": self.seller_id,
            "buyer_id": BUYER_ID,
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "trade_status": status,
            "total_amount": _yuan(trade.total_amount),
            "subject": trade.subject,
            "gmt_create": _beijing(trade.opened_at),
        }

    def _signed_notification(self, params: dict[str, str], forge: Forgery | None) -> dict[str, str]:
        if forge == "total_amount":
            params["total_amount"] = _yuan(Decimal(params["total_amount"]) + 1)
        elif forge == "app_id":
            params["app_id"] = params["auth_app_id"] = "2021009999999999"
        elif forge == "seller_id":
            params["seller_id"] = "2088009999999999"
        if forge:
            # A forgery is another notification: a duplicate's notify_id would hide it behind the genuine one.
            params["notify_id"] = hashlib.sha256(f"{params['notify_id']}|{forge}".encode()).hexdigest()[:34]
        params["sign"] = self._sign(signed_text(params, without=("sign", "sign_type"), skip_empty=False))
        if forge == "signature":
            tampered = bytearray(b64decode(params["sign"]))
            tampered[-1] ^= 0x01
            params["sign"] = b64encode(bytes(tampered)).decode()
        return params

    # --- the daily bill ----------------------------------------------------------------------------------------

    def inject_bill_mismatch(
        self, out_trade_no: str | None = None, *, amount: Decimal | None = None, drop: bool = False
    ) -> str:
        """Make the bills served from now on differ from the trades: a paid trade's line with another amount, or
        dropped; without out_trade_no, a paid line for a trade nobody made (its out_trade_no is returned)."""
        if out_trade_no is not None and amount is None and not drop:
            raise ValueError("say what differs: amount=… or drop=True")
        with self._lock:
            if out_trade_no is None:
                out_trade_no = "pa" + secrets.token_hex(12)
                self._bill_extra.append((out_trade_no, self._trade_no(), amount or Decimal("1.00")))
            else:
                self._bill_changes[out_trade_no] = None if drop else amount
        return out_trade_no

    def bill_zip(self, day: date) -> bytes:
        """The trade bill (bill_type=trade) of one Beijing day: a zip of two GBK CSV files, 业务明细 and its 汇总."""
        with self._lock:
            rows = self._bill_rows(day)
        account = f"{self.seller_id}0156"
        stamp = day.strftime("%Y%m%d")
        detail, summary = _detail_csv(account, day, rows), _summary_csv(account, day, rows)
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
            files = {f"{account}_{stamp}_业务明细.csv": detail, f"{account}_{stamp}_业务明细(汇总).csv": summary}
            for name, text in files.items():
                bundle.writestr(_GbkName(name, date_time=(day.year, day.month, day.day, 9, 0, 0)), text.encode("gbk"))
        return archive.getvalue()

    def _bill_rows(self, day: date) -> list[tuple[str, str, str, str, Decimal, str]]:
        """(trade_no, out_trade_no, 业务类型, subject, amount, out_request_no) of the day's money movements."""
        rows = []
        for trade in self.trades.values():
            if trade.paid_at and trade.paid_at.astimezone(SHANGHAI).date() == day:
                amount = self._bill_changes.get(trade.out_trade_no, trade.total_amount)
                if amount is not None:  # None: dropped from the bill
                    rows.append((trade.trade_no, trade.out_trade_no, "交易", trade.subject, amount, ""))
            for refund in trade.refunds.values():
                if refund.refunded_at.astimezone(SHANGHAI).date() == day:
                    refunded, number = -refund.amount, refund.out_request_no
                    rows.append((trade.trade_no, trade.out_trade_no, "退款", trade.subject, refunded, number))
        for out_trade_no, trade_no, amount in self._bill_extra:
            rows.append((trade_no, out_trade_no, "交易", "Batchpay", amount, ""))
        return rows

    # --- the gateway ---------------------------------------------------------------------------------------------

    def _sign(self, text: str) -> str:
        signature = self._alipay_key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())
        return b64encode(signature).decode()

    def _signed_by_app(self, params: Mapping[str, str]) -> bool:
        try:
            signature = b64decode(params.get("sign", ""), validate=True)
            text = signed_text(params, without=("sign",))
            self._app_public_key.verify(signature, text.encode(), padding.PKCS1v15(), hashes.SHA256())
        except (ValueError, InvalidSignature):
            return False
        return True

    def _trade_no(self) -> str:
        return timezone.now().astimezone(SHANGHAI).strftime("%Y%m%d") + "22001" + secrets.token_hex(8)[:15].upper()

    def _checked_request(self, params: dict[str, str]) -> tuple[str, dict[str, Any]]:
        """The method and biz_content of a request signed by the app, in the common parameters' documented form."""
        if params.get("app_id") != self.app_id:
            raise _invalid("isv.invalid-app-id", "无效的AppID参数")
        if params.get("sign_type") != "RSA2":
            raise _invalid("isv.invalid-signature-type", "无效的签名类型")
        if not self._signed_by_app(params):
            raise _invalid("isv.invalid-signature", "验签出错")
        if params.get("charset", "").lower() != "utf-8" or params.get("version") != "1.0":
            raise _invalid("isv.invalid-charset", "字符集或版本错误")
        try:
            datetime.strptime(params.get("timestamp", ""), ALIPAY_TIME)  # noqa: DTZ007 - only its form is checked
            biz = json.loads(params.get("biz_content", "{}"))
        except ValueError:
            raise _invalid("isv.invalid-timestamp", "非法的时间戳参数或业务参数") from None
        if not isinstance(biz, dict):
            raise _invalid("isv.invalid-arguments", "biz_content 不是对象")
        return params.get("method", ""), biz

    def handle_gateway(self, params: dict[str, str]) -> tuple[int, str, bytes]:
        """One request to gateway.do: (status, content type, body)."""
        with self._lock:
            failing = self._failing_requests.pop(0) if self._failing_requests else None
            stall = self._stalling_requests.pop(0) if self._stalling_requests else 0.0
        if stall:
            time.sleep(stall)
        if failing:
            return failing, "text/html; charset=utf-8", b"<html><body>Bad Gateway</body></html>"
        api = params.get("method", "")
        if api in PAY_PRODUCTS:
            return self._cashier(params)
        response = api.replace(".", "_") + "_response"
        with self._lock:
            try:
                api, biz = self._checked_request(params)
            except GatewayRefusal as refusal:
                answer = refusal.body
            else:
                request = FakeRequest(api=api, biz=biz, params=params)
                self.requests.append(request)
                try:
                    request.answer = self._answer(api, biz)
                except GatewayRefusal as refusal:
                    request.answer = refusal.body
                answer = request.answer
        body = json.dumps(answer, ensure_ascii=False, separators=(",", ":"))
        # The signature covers the exact text of the <method>_response object, as it stands in the answer.
        text = f'{{"{response}":{body},"sign":"{self._sign(body)}"}}'
        return 200, "application/json; charset=utf-8", text.encode()

    def _answer(self, api: str, biz: dict[str, Any]) -> dict[str, Any]:
        handlers = {
            "alipay.trade.query": self._query,
            "alipay.trade.close": self._close,
            "alipay.trade.refund": self._refund,
            "alipay.trade.fastpay.refund.query": self._refund_query,
            "alipay.data.dataservice.bill.downloadurl.query": self._bill_url,
        }
        if api not in handlers:
            raise _invalid("isv.invalid-method", "不存在的方法名")
        return {"code": "10000", "msg": "Success", **handlers[api](biz)}

    def _trade(self, biz: dict[str, Any]) -> FakeTrade:
        trade = self.trades.get(str(biz.get("out_trade_no", "")))
        if trade is None:
            raise _business("ACQ.TRADE_NOT_EXIST", "交易不存在")
        self._expire(trade)
        return trade

    def _query(self, biz: dict[str, Any]) -> dict[str, Any]:
        trade = self._trade(biz)
        answer = {
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_logon_id": BUYER_LOGON_ID,
            "trade_status": trade.status,
            "total_amount": _yuan(trade.total_amount),
            "buyer_pay_amount": _yuan(trade.total_amount if trade.paid_at else Decimal(0)),
        }
        if trade.paid_at:
            answer["send_pay_date"] = _beijing(trade.paid_at)
        return answer

    def _close(self, biz: dict[str, Any]) -> dict[str, Any]:
        trade = self._trade(biz)
        if trade.status != "WAIT_BUYER_PAY":
            raise _business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        trade.status, trade.closed_at = "TRADE_CLOSED", timezone.now()
        return {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}

    def _refund(self, biz: dict[str, Any]) -> dict[str, Any]:
        if self._failing_refunds:
            sub_code = self._failing_refunds.pop(0)
            raise _business(sub_code, "系统错误" if sub_code.endswith("SYSTEM_ERROR") else sub_code)
        trade = self._trade(biz)
        try:
            amount = Decimal(str(biz["refund_amount"]))
        except (KeyError, ArithmeticError):
            raise _business("ACQ.INVALID_PARAMETER", "参数无效") from None
        if amount <= 0 or amount != amount.quantize(Decimal("0.01")):
            raise _business("ACQ.INVALID_PARAMETER", "参数无效")
        # Without out_request_no the trade's out_trade_no stands for the refund, which must then be the whole amount.
        out_request_no = str(biz.get("out_request_no") or trade.out_trade_no)
        done = {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no, "buyer_logon_id": BUYER_LOGON_ID}
        earlier = trade.refunds.get(out_request_no)
        if earlier is not None:
            if earlier.amount != amount:
                raise _business("ACQ.DISCORDANT_REPEAT_REQUEST", "请求信息不一致")
            return done | {"fund_change": "N", "refund_fee": _yuan(trade.refunded)}
        if trade.status == "TRADE_FINISHED":
            raise _business("ACQ.TRADE_HAS_FINISHED", "交易已完结")
        if trade.status != "TRADE_SUCCESS":
            raise _business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        if not biz.get("out_request_no") and amount != trade.total_amount:
            raise _business("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额与订单金额不一致")
        if amount > trade.total_amount - trade.refunded:
            raise _business("ACQ.REASON_TRADE_REFUND_FEE_ERR", "退款金额无效")
        refund = FakeRefund(out_request_no=out_request_no, amount=amount, refunded_at=timezone.now())
        trade.refunds[out_request_no] = refund
        if trade.refunded == trade.total_amount:
            trade.status, trade.closed_at = "TRADE_CLOSED", refund.refunded_at
        refunded_at = _beijing(refund.refunded_at)
        return done | {"fund_change": "Y", "refund_fee": _yuan(trade.refunded), "gmt_refund_pay": refunded_at}

    def _refund_query(self, biz: dict[str, Any]) -> dict[str, Any]:
        trade = self._trade(biz)
        refund = trade.refunds.get(str(biz.get("out_request_no", "")))
        if refund is None:
            # "如果没有查询到则代表未退款成功": a success without any of the refund's fields.
            return {}
        return {
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "out_request_no": refund.out_request_no,
            "total_amount": _yuan(trade.total_amount),
            "refund_amount": _yuan(refund.amount),
            "refund_status": "REFUND_SUCCESS",
        }

    def _bill_url(self, biz: dict[str, Any]) -> dict[str, Any]:
        if biz.get("bill_type") != "trade":
            raise _business("isv.invalid-arguments", "bill_type 只支持 trade")
        try:
            day = date.fromisoformat(str(biz.get("bill_date")))
        except ValueError:
            raise _business("isv.invalid-arguments", "bill_date 格式错误") from None
        if day > timezone.now().astimezone(SHANGHAI).date():
            raise _business("isp.bill_not_exist", "账单不存在")
        return {"bill_download_url": f"{self.base_url}/_fake/bill/{day.isoformat()}.zip"}

    def _cashier(self, params: dict[str, str]) -> tuple[int, str, bytes]:
        """A page/wap pay URL opened by the shopper's browser: Alipay's cashier, or its error page."""
        with self._lock:
            try:
                api, biz = self._checked_request(params)
                self.requests.append(FakeRequest(api=api, biz=biz, params=params))
                trade = self._opened_trade(api, biz, params)
            except GatewayRefusal as refusal:
                return 400, "text/html; charset=utf-8", _page("支付宝 · 错误", f"<p class=error>{refusal}</p>")
        form = (
            f'<form method="post" action="/_fake/pay"><input type="hidden" name="out_trade_no" '
            f'value="{html.escape(trade.out_trade_no)}"><button type="submit">确认付款</button></form>'
        )
        content = (
            f"<p class=subject>{html.escape(trade.subject)}</p><p class=amount>¥{_yuan(trade.total_amount)}</p>"
            f"<p class=out_trade_no>{html.escape(trade.out_trade_no)}</p>{form}"
        )
        return 200, "text/html; charset=utf-8", _page("支付宝 · 收银台", content)

    def _opened_trade(self, api: str, biz: dict[str, Any], params: dict[str, str]) -> FakeTrade:
        out_trade_no, subject = str(biz.get("out_trade_no", "")), str(biz.get("subject", ""))
        if not 1 <= len(out_trade_no) <= 64 or not out_trade_no.replace("_", "").isalnum():
            raise _business("ACQ.INVALID_PARAMETER", "out_trade_no 无效")
        if not subject or len(subject) > 256 or any(character in subject for character in "/=&"):
            raise _business("ACQ.INVALID_PARAMETER", "subject 无效")
        if biz.get("product_code") != PAY_PRODUCTS[api]:
            raise _business("ACQ.INVALID_PARAMETER", "product_code 无效")
        try:
            amount = Decimal(str(biz.get("total_amount")))
            expire = biz.get("time_expire")
            time_expire = datetime.strptime(expire, ALIPAY_TIME).replace(tzinfo=SHANGHAI) if expire else None
        except (ArithmeticError, TypeError, ValueError):
            raise _business("ACQ.INVALID_PARAMETER", "参数无效") from None
        if not Decimal("0.01") <= amount <= Decimal("100000000") or amount != amount.quantize(Decimal("0.01")):
            raise _business("ACQ.INVALID_PARAMETER", "total_amount 无效")
        if time_expire and time_expire <= timezone.now():
            raise _business("ACQ.TRADE_HAS_CLOSE", "订单已超时")
        trade = self.trades.get(out_trade_no)
        if trade is not None:
            if trade.total_amount != amount:
                raise _business("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
            self._expire(trade)
            if trade.status != "WAIT_BUYER_PAY":
                raise _business("ACQ.TRADE_STATUS_ERROR", f"交易状态为 {trade.status}")
            return trade
        trade = FakeTrade(
            out_trade_no=out_trade_no,
            total_amount=amount,
            subject=subject,
            api=api,
            notify_url=params.get("notify_url", ""),
            return_url=params.get("return_url", ""),
            time_expire=time_expire,
            trade_no=self._trade_no(),
            opened_at=timezone.now(),
        )
        self.trades[out_trade_no] = trade
        return trade

    def handle_cashier_pay(self, out_trade_no: str) -> tuple[int, dict[str, str], bytes]:
        """The cashier's pay button: pay, notify, and send the browser back to return_url with signed parameters."""
        try:
            trade = self.pay(out_trade_no)
        except LookupError as error:
            return 400, {"Content-Type": "text/html; charset=utf-8"}, _page("支付宝 · 错误", html.escape(str(error)))
        # The site may not answer: a test can deliver the notification again.
        with contextlib.suppress(OSError):
            self.post_notification(self.payment_notification(out_trade_no))
        if not trade.return_url:
            return 200, {"Content-Type": "text/html; charset=utf-8"}, _page("支付宝", "<p>付款成功</p>")
        back = {
            "app_id": self.app_id,
            "auth_app_id": self.app_id,
            "method": f"{trade.api}.return",
            "charset": "utf-8",
            "version": "1.0",
            "sign_type": "RSA2",
            "timestamp": _beijing(timezone.now()),
            "out_trade_no": trade.out_trade_no,
            "trade_no": trade.trade_no,
            "total_amount": _yuan(trade.total_amount),
            "seller_id": self.seller_id,
        }
        back["sign"] = self._sign(signed_text(back, without=("sign", "sign_type")))
        separator = "&" if urlsplit(trade.return_url).query else "?"
        return 302, {"Location": f"{trade.return_url}{separator}{urlencode(back)}"}, b""


class _GbkName(zipfile.ZipInfo):
    """A member named in GBK without the UTF-8 flag, as in the bills Alipay serves."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:  # zipfile's own (private) method
        return self.filename.encode("gbk"), self.flag_bits


DETAIL_COLUMNS = (
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,"
    "订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,"
    "商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注"
)
RULE = "-" * 41


def _bill_head(title: str, account: str, day: date) -> list[str]:
    start, end = day, day + timedelta(days=1)
    return [
        f"#支付宝{title}查询",
        f"#账号：[{account}]",
        f"#起始日期：[{start:%Y年%m月%d日} 00:00:00]   终止日期：[{end:%Y年%m月%d日} 00:00:00]",
        f"#{RULE}{title}列表{RULE}",
    ]


def _detail_csv(account: str, day: date, rows: list[tuple[str, str, str, str, Decimal, str]]) -> str:
    out = io.StringIO()
    out.write("\r\n".join([*_bill_head("业务明细", account, day), DETAIL_COLUMNS]) + "\r\n")
    writer = csv.writer(out, lineterminator="\r\n")
    finished = f"{day:%Y-%m-%d} 10:00:00"
    for trade_no, out_trade_no, kind, subject, amount, out_request_no in rows:
        money = [_yuan(amount), _yuan(amount), *["0.00"] * 5]
        writer.writerow(
            [
                *(f"{trade_no}\t", f"{out_trade_no}\t", kind, subject, f"{day:%Y-%m-%d} 09:59:30", finished),
                *("", "", "", "", BUYER_LOGON_ID, *money, "", "0.00", "0.00"),
                *(f"{out_request_no}\t" if out_request_no else "", "0.00", "0.00", ""),
            ]
        )
    payments = [row[4] for row in rows if row[2] == "交易"]
    refunds = [row[4] for row in rows if row[2] == "退款"]
    out.write(
        f"#{RULE}业务明细列表结束{RULE}\r\n"
        f"#交易合计：{len(payments)}笔，商家实收：{_yuan(sum(payments, Decimal(0)))}元，商家优惠：0.00元\r\n"
        f"#退款合计：{len(refunds)}笔，商家实收：{_yuan(sum(refunds, Decimal(0)))}元，商家优惠：0.00元\r\n"
        f"#导出时间：[{day + timedelta(days=1):%Y年%m月%d日} 09:00:00]\r\n"
    )
    return out.getvalue()


def _summary_csv(account: str, day: date, rows: list[tuple[str, str, str, str, Decimal, str]]) -> str:
    payments = sum(1 for row in rows if row[2] == "交易")
    refunds = len(rows) - payments
    total = _yuan(sum((row[4] for row in rows), Decimal(0)))
    head = "门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）,实收净额（元）"
    lines = [
        *_bill_head("业务汇总", account, day),
        head,
        f",,{payments},{refunds},{total},{total},{total}",
        f"合计,,{payments},{refunds},{total},{total},{total}",
        f"#{RULE}业务汇总列表结束{RULE}",
        f"#导出时间：[{day + timedelta(days=1):%Y年%m月%d日} 09:00:00]",
    ]
    return "\r\n".join(lines) + "\r\n"


def _page(title: str, content: str) -> bytes:
    return (
        f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{title}（测试）</title></head>'
        f"<body><h1>{title}（测试）</h1>{content}</body></html>"
    ).encode()


class _Handler(BaseHTTPRequestHandler):
    fake: FakeAlipay

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests' output is not the place for the fake's access log."""

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/gateway.do":
            self._send(*self.fake.handle_gateway(dict(parse_qsl(url.query, keep_blank_values=True))))
        elif url.path.startswith("/_fake/bill/") and url.path.endswith(".zip"):
            try:
                day = date.fromisoformat(url.path.removeprefix("/_fake/bill/").removesuffix(".zip"))
            except ValueError:
                self._send(404, "text/plain", b"no such bill")
                return
            self._send(200, "application/zip", self.fake.bill_zip(day))
        else:
            self._send(404, "text/plain", b"not found")

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))
        if url.path == "/gateway.do":
            self._send(*self.fake.handle_gateway({**dict(parse_qsl(url.query, keep_blank_values=True)), **form}))
        elif url.path == "/_fake/pay":
            status, headers, body = self.fake.handle_cashier_pay(form.get("out_trade_no", ""))
            self._send(status, headers.get("Content-Type", "text/plain"), body, location=headers.get("Location"))
        else:
            self._send(404, "text/plain", b"not found")

    def _send(self, status: int, content_type: str, body: bytes, *, location: str | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if location:
                self.send_header("Location", location)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a stalled answer): nothing to tell it


# --- fixtures -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def alipay_gateway() -> Iterator[FakeAlipay]:
    """The fake gateway of the test session (one port, one pair of keys): a worker started with
    `fake.environ()` keeps reaching it. Tests use `fake_alipay`, which empties it first."""
    fake = FakeAlipay(app_private_key=new_rsa_key()).start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_alipay(alipay_gateway: FakeAlipay, settings: Any) -> Iterator[FakeAlipay]:
    """The fake Alipay gateway, empty, with this process's Django settings pointed at it."""
    alipay_gateway.reset()
    for name, value in alipay_gateway.settings().items():
        setattr(settings, name, value)
    yield alipay_gateway
    alipay_gateway.reset()
