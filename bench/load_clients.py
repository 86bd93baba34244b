"""The load's clients: integrators on the API, each a thread with a user and token of its own, each looping
through one journey after another — submit a batch, wait for its merged payment, pay it at the sandbox
gateway as a shopper would, wait until the batch is paid.

Every HTTP request is recorded (its kind, its status, when it started, how long it took); an answer other
than the one the flow expects ends the journey, and the client starts the next one. Imports no Django: the
clients see the site only over HTTP.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import requests

BATCHES_PATH = "/api/v1/batches/"
# gunicorn's own worker timeout: a request that takes longer has been killed on the server anyway.
REQUEST_TIMEOUT = 30
# What each kind of request answers when all goes well; the 302s are the pay flow's redirects.
EXPECTED_STATUS = {"submit": 202, "poll": 200, "pay page": 200, "pay": 302, "gateway page": 200, "gateway pay": 302}
# The payment page's button for the sandbox gateway (provider:method).
SANDBOX_METHOD = "sandbox:page"
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')

# The catalogue the rows use; bench.load creates it. Half of the goods track stock (rows then take the
# conditional stock UPDATE and meet on the product's row lock, as in a real shop), the rest is unlimited.
GOODS = [(f"LOAD-GOODS-{index}", f"{19 + index}.90", 10**9 if index % 2 == 0 else None) for index in range(6)]
GAMES = [("LOAD-GAME-GOLD", "6.00"), ("LOAD-GAME-GEMS", "9.90")]
# One prefix per carrier (China Mobile, Unicom, Telecom), so that each carrier's discount is used.
PHONE_PREFIXES = ["138", "186", "189"]
FACE_VALUES = ["20", "50", "100"]


def batch_rows(count: int, *, client: int, sequence: int) -> list[dict[str, Any]]:
    """Goods, a mobile top-up and game currency in turn. Every phone number ends in 7: the sandbox
    upstream fails or delays only numbers ending in 0000, 0001 and 0002 (SPEC §6), and this load is
    about the happy path."""
    rows: list[dict[str, Any]] = []
    for index in range(count):
        serial = (sequence * count + index) % 100_000
        if index % 3 == 0:
            sku = GOODS[(sequence + index) % len(GOODS)][0]
            rows.append({"kind": "goods", "sku": sku, "quantity": 1 + index % 3})
        elif index % 3 == 1:
            prefix = PHONE_PREFIXES[(sequence + index) % len(PHONE_PREFIXES)]
            phone = f"{prefix}{client % 100:02d}{serial:05d}7"
            rows.append({"kind": "mobile", "phone": phone, "face_value": FACE_VALUES[index % len(FACE_VALUES)]})
        else:
            sku = GAMES[(sequence + index) % len(GAMES)][0]
            rows.append({"kind": "game", "sku": sku, "account": f"user-{client:03d}{serial:05d}", "quantity": 2})
    return rows


@dataclass(frozen=True)
class Answer:
    kind: str
    # 0: no answer at all (connection refused or reset, timeout).
    status: int
    started: float  # time.monotonic()
    seconds: float


class Unexpected(Exception):
    """An answer the flow did not expect (or none): the journey ends here."""


class Http:
    """Sends requests and records every answer. One for all clients: appending to a list is atomic."""

    def __init__(self) -> None:
        self.answers: list[Answer] = []

    def request(self, session: requests.Session, kind: str, method: str, url: str, **options: Any) -> requests.Response:
        started = time.monotonic()
        try:
            # The whole body is read before this returns: the time is the client's whole wait.
            response = session.request(method, url, timeout=REQUEST_TIMEOUT, allow_redirects=False, **options)
        except requests.RequestException as error:
            self.answers.append(Answer(kind, 0, started, time.monotonic() - started))
            raise Unexpected(f"{kind}: {method} {url}: no answer ({error})") from None
        self.answers.append(Answer(kind, response.status_code, started, time.monotonic() - started))
        if response.status_code != EXPECTED_STATUS[kind]:
            raise Unexpected(f"{kind}: {method} {url} answered {response.status_code}: {response.text[:300]!r}")
        return response


def pay_as_a_shopper(http: Http, pay_url: str) -> None:
    """Follow the pay URL, choose the sandbox gateway among the ways to pay, and press Pay on its page, as a
    shopper's browser does: a fresh browser (its own cookies), each page's CSRF token in its form. The gateway
    then notifies the site from a Celery task. The redirect back to the website's result page is not followed:
    that page is for the logged-in shopper, and the client follows the batch through the API instead."""
    browser = requests.Session()
    methods = http.request(browser, "pay page", "GET", pay_url)
    token = CSRF_FIELD.search(methods.text)
    if token is None or f'value="{SANDBOX_METHOD}"' not in methods.text:
        raise Unexpected(f"pay page: no {SANDBOX_METHOD} method to choose at {pay_url}")
    chosen = http.request(
        browser, "pay", "POST", pay_url, data={"csrfmiddlewaretoken": token[1], "method": SANDBOX_METHOD}
    )
    gateway_url = urljoin(pay_url, chosen.headers["Location"])
    page = http.request(browser, "gateway page", "GET", gateway_url)
    token = CSRF_FIELD.search(page.text)
    if token is None:
        raise Unexpected(f"gateway page: no Pay form at {gateway_url}")
    http.request(browser, "gateway pay", "POST", gateway_url, data={"csrfmiddlewaretoken": token[1], "decision": "pay"})


@dataclass
class Journey:
    """One batch, from its submission to paid, as the client saw it (time.monotonic() values)."""

    client: int
    submitted: float
    batch_id: str = ""
    payment_seen: float | None = None
    # Wall-clock (time.time()) when Pay had answered: the server's paid_at is on the same clock.
    pay_answered_at: float | None = None
    paid_seen: float | None = None
    # paid, failed (no row was placed), unfinished (the deadline came first) or the unexpected answer.
    outcome: str = ""


class Client(threading.Thread):
    """One integrator: journeys one after another until `end`; the last one may go on until `deadline`."""

    def __init__(
        self,
        *,
        index: int,
        site_url: str,
        token: str,
        http: Http,
        rows: int,
        poll_interval: float,
        end: float,
        deadline: float,
    ):
        super().__init__(name=f"load-client-{index}", daemon=True)
        self.index = index
        self.site_url = site_url
        self.http = http
        self.rows = rows
        self.poll_interval = poll_interval
        self.end = end
        self.deadline = deadline
        self.api = requests.Session()
        self.api.headers["Authorization"] = f"Token {token}"
        self.journeys: list[Journey] = []

    def run(self) -> None:
        while time.monotonic() < self.end:
            self.journey()

    def journey(self) -> Journey:
        journey = Journey(client=self.index, submitted=time.monotonic())
        self.journeys.append(journey)
        try:
            journey.outcome = self._travel(journey)
        except Unexpected as error:
            journey.outcome = str(error)
            # Not a tight loop of failures against a site that is in trouble.
            time.sleep(self.poll_interval)
        return journey

    def _travel(self, journey: Journey) -> str:
        rows = batch_rows(self.rows, client=self.index, sequence=len(self.journeys))
        journey.submitted = time.monotonic()
        accepted = self.http.request(self.api, "submit", "POST", self.site_url + BATCHES_PATH, json={"rows": rows})
        journey.batch_id, batch_url = accepted.json()["id"], accepted.json()["url"]

        batch = self._poll(batch_url, lambda batch: batch["payment"] is not None or batch["status"] == "failed")
        if batch is None:
            return "unfinished"
        if batch["payment"] is None:
            return "failed"
        journey.payment_seen = time.monotonic()

        pay_as_a_shopper(self.http, batch["payment"]["pay_url"])
        journey.pay_answered_at = time.time()

        if self._poll(batch_url, lambda batch: batch["status"] == "paid") is None:
            return "unfinished"
        journey.paid_seen = time.monotonic()
        return "paid"

    def _poll(self, url: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        """GET the batch every poll interval until `done`; None if the deadline comes first."""
        while time.monotonic() < self.deadline:
            time.sleep(self.poll_interval)
            batch: dict[str, Any] = self.http.request(self.api, "poll", "GET", url).json()
            if done(batch):
                return batch
        return None
