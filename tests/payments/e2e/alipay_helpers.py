"""Paying a payment on the Alipay rail as a shopper does: the pay page, the method chosen, the redirect to
Alipay's cashier; and reading what the site signed into that redirect."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import requests

from payments.models import Payment, PaymentAttempt

DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)


def pay_page(client: Any, payment: Payment, *, user_agent: str = DESKTOP) -> str:
    """The payment page's HTML as a browser with this User-Agent gets it."""
    response = client.get(f"/payments/pay/{payment.reference}/", HTTP_USER_AGENT=user_agent)
    assert response.status_code == 200, response.status_code
    return str(response.content.decode())


def choose(client: Any, payment: Payment, method: str, *, user_agent: str = DESKTOP) -> tuple[PaymentAttempt, str]:
    """Press a method's button on the payment page: the attempt it started and where the browser is sent."""
    response = client.post(f"/payments/pay/{payment.reference}/", {"method": method}, HTTP_USER_AGENT=user_agent)
    assert response.status_code == 302, (response.status_code, response.content[:500])
    attempt = payment.attempts.order_by("-created_at", "-pk").first()
    assert attempt is not None
    return attempt, response["Location"]


def signed_parameters(url: str) -> tuple[dict[str, str], dict[str, Any]]:
    """The common parameters of a page/wap pay URL and its decoded biz_content."""
    params = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    return params, json.loads(params.get("biz_content", "{}"))


def press_pay_at_cashier(cashier_url: str, cashier_html: str) -> str:
    """Press the pay button of the cashier page opened from `cashier_url`, as the shopper's browser posts its
    form: Alipay takes the money, notifies the site, and sends the browser back; returns where to."""
    out_trade_no = re.search(r'name="out_trade_no" value="([^"]+)"', cashier_html)
    action = re.search(r'<form method="post" action="([^"]+)"', cashier_html)
    assert out_trade_no and action, cashier_html
    response = requests.post(
        urljoin(cashier_url, action.group(1)),
        data={"out_trade_no": out_trade_no.group(1)},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 302, response.text
    return str(response.headers["Location"])
