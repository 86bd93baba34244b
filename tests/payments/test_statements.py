"""The daily reconciliation: each rail's bill of a day (from its fake) compared with our records, every difference
noted once for staff, in the admin, and resolved there with a note.

Payments are paid and refunded through the services and the rails' fakes, as in production: the attempt
started at the rail, paid there, learnt by a query; the refund requested and confirmed by the rail.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from celery.schedules import crontab
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from config.celery import app as celery_app
from orders.models import Order
from payments import services, tasks
from payments.models import (
    Payment,
    PaymentAttempt,
    Refund,
    StatementMismatch,
    StatementReconciliation,
)
from payments.providers import ProviderUnavailable
from tests.factories import UserFactory
from tests.payments.factories import PaymentFactory
from tests.payments.fakes.alipay import FakeAlipay
from tests.payments.fakes.wechat import FakeWeChatPay, wechat_pay_fake
from tests.payments.refunding import refund_order_now

SHANGHAI = ZoneInfo("Asia/Shanghai")
Kind = StatementMismatch.Kind


def today() -> date:
    return timezone.localdate(timezone=SHANGHAI)


@dataclass
class Rail:
    """One rail's fake, behind what these tests do with it."""

    name: str
    method: str
    fake: Any

    def paid_at_the_rail(self) -> PaymentAttempt:
        """An attempt started on the rail and paid there, of which we know nothing yet (no notification)."""
        payment = PaymentFactory(pending=True, batch__row_count=2)
        attempt = services.attempt_start(
            payment_reference=payment.reference, provider_name=self.name, method=self.method, client_ip="203.0.113.7"
        )
        if isinstance(self.fake, FakeAlipay):
            assert self.fake.open(attempt.redirect_url)[0] == 200
            self.fake.pay(attempt.reference)
        else:
            self.fake.mark_paid(attempt.reference)
        return attempt

    def pay(self) -> PaymentAttempt:
        """An attempt paid at the rail, and known here to have succeeded (a query told us)."""
        attempt = self.paid_at_the_rail()
        services.attempt_reconcile(attempt_id=attempt.pk)
        attempt.refresh_from_db()
        assert attempt.status == PaymentAttempt.Status.SUCCEEDED
        return attempt

    def refund_an_order(self, attempt: PaymentAttempt) -> Refund:
        order = Order.objects.filter(allocation__payment=attempt.payment_id).order_by("row_index").first()
        assert order is not None
        refund = refund_order_now(order, reason="top-up failed")
        assert refund.request is not None
        if isinstance(self.fake, FakeWeChatPay):
            self.fake.complete_refund(refund.request.reference)
            services.refund_query(request_id=refund.request.pk)
        refund.refresh_from_db()
        assert refund.status == Refund.Status.SUCCEEDED
        return refund

    def inject(self, change: str, attempt: PaymentAttempt) -> str:
        """Make the bill differ from our records in one way; the reference of the transaction that differs."""
        if change == "amount":
            changed = attempt.amount + Decimal("1.00")
            if isinstance(self.fake, FakeAlipay):
                self.fake.inject_bill_mismatch(attempt.reference, amount=changed)
            else:
                self.fake.inject_bill_mismatch(attempt.reference, changed)
            return attempt.reference
        if change == "dropped":
            if isinstance(self.fake, FakeAlipay):
                self.fake.inject_bill_mismatch(attempt.reference, drop=True)
            else:
                self.fake.inject_bill_mismatch(attempt.reference, None)
            return attempt.reference
        if isinstance(self.fake, FakeAlipay):
            return self.fake.inject_bill_mismatch(amount=Decimal("8.80"))
        stranger = "pa" + "0" * 24
        self.fake.inject_bill_mismatch(stranger, Decimal("8.80"))
        return stranger


@pytest.fixture(params=["wechat", "alipay"])
def rail(request: pytest.FixtureRequest, settings: Any) -> Iterator[Rail]:
    if request.param == "wechat":
        with wechat_pay_fake(settings) as fake:
            yield Rail("wechat", "native", fake)
    else:
        yield Rail("alipay", "page", request.getfixturevalue("fake_alipay"))


@pytest.fixture
def paid_day(db: None, rail: Rail) -> list[PaymentAttempt]:
    """Three attempts paid today on the rail, one of them with an order refunded."""
    attempts = [rail.pay() for _ in range(3)]
    rail.refund_an_order(attempts[0])
    return attempts


@pytest.fixture
def staff(db: None) -> Any:
    return UserFactory(is_staff=True, is_superuser=True)


def test_a_bill_that_matches_our_records_flags_nothing(rail: Rail, paid_day: list[PaymentAttempt]) -> None:
    outcome = services.statement_reconcile(provider_name=rail.name, day=today())

    assert (outcome.lines, outcome.found) == (4, 0)  # three payments and a refund
    assert not StatementMismatch.objects.exists()
    reconciled = StatementReconciliation.objects.get(provider=rail.name, day=today())
    assert (reconciled.lines, reconciled.mismatches) == (4, 0)


EXPECTED_KIND = {"amount": Kind.AMOUNT, "dropped": Kind.MISSING_THERE, "unknown": Kind.MISSING_HERE}


@pytest.mark.parametrize("change", ["amount", "dropped", "unknown"])
def test_one_difference_is_flagged_once_shown_to_staff_and_stays_resolved(
    rail: Rail, paid_day: list[PaymentAttempt], change: str, client: Any, staff: Any
) -> None:
    # given a bill that differs from our records on one transaction
    reference = rail.inject(change, paid_day[1])

    # when the day is reconciled
    outcome = services.statement_reconcile(provider_name=rail.name, day=today())

    # then exactly that one is flagged
    assert (outcome.found, outcome.new) == (1, 1)
    mismatch = StatementMismatch.objects.get()
    assert (mismatch.provider, mismatch.day, mismatch.kind, mismatch.reference) == (
        rail.name,
        today(),
        EXPECTED_KIND[change],
        reference,
    )
    assert mismatch.refund_reference == ""
    assert mismatch.resolved_at is None

    # and staff see it in the admin, among the unresolved of that rail
    client.force_login(staff)
    changelist = "/admin/payments/statementmismatch/"
    page = client.get(changelist, {"provider": rail.name, "kind": mismatch.kind, "resolved": "no"})
    assert page.status_code == 200
    assert reference in page.content.decode()

    # reconciling the day again notes nothing new
    again = services.statement_reconcile(provider_name=rail.name, day=today())
    assert (again.found, again.new) == (1, 0)
    assert StatementMismatch.objects.count() == 1

    # staff resolve it with a note (the admin action asks for the note first)
    chosen = {"action": "resolve", "_selected_action": [mismatch.pk]}
    asked = client.post(changelist, chosen)
    assert asked.status_code == 200 and "Mark resolved" in asked.content.decode()
    client.post(changelist, {**chosen, "apply": "1", "note": "checked with the rail: its bill is wrong"})
    mismatch.refresh_from_db()
    assert mismatch.resolved_by == staff
    assert mismatch.resolution_note == "checked with the rail: its bill is wrong"
    resolved_at = mismatch.resolved_at
    assert resolved_at is not None

    # and it stays resolved, as it was, however often the day is reconciled again
    services.statement_reconcile(provider_name=rail.name, day=today())
    mismatch.refresh_from_db()
    assert (mismatch.resolved_at, mismatch.resolved_by) == (resolved_at, staff)
    assert StatementMismatch.objects.count() == 1
    unresolved = client.get(changelist, {"resolved": "no"})
    assert reference not in unresolved.content.decode()


def test_a_resolution_without_a_note_resolves_nothing(
    rail: Rail, paid_day: list[PaymentAttempt], client, staff
) -> None:
    rail.inject("unknown", paid_day[0])
    services.statement_reconcile(provider_name=rail.name, day=today())
    mismatch = StatementMismatch.objects.get()
    client.force_login(staff)

    page = client.post(
        "/admin/payments/statementmismatch/",
        {"action": "resolve", "_selected_action": [mismatch.pk], "apply": "1", "note": ""},
    )

    assert page.status_code == 200  # the form again, with its error
    mismatch.refresh_from_db()
    assert mismatch.resolved_at is None


def test_a_refund_the_rail_has_not_finished_is_no_difference_but_one_it_finished_and_we_did_not_is(
    db: None, settings: Any
) -> None:
    with wechat_pay_fake(settings) as fake:
        rail = Rail("wechat", "native", fake)
        attempt = rail.pay()
        order = Order.objects.filter(allocation__payment=attempt.payment_id).order_by("row_index").first()
        assert order is not None
        refund = refund_order_now(order)
        assert refund.status == Refund.Status.PENDING  # WeChat Pay is still processing it
        assert refund.request is not None

        assert services.statement_reconcile(provider_name="wechat", day=today()).found == 0

        fake.complete_refund(refund.request.reference)  # its notification never reaches us
        services.statement_reconcile(provider_name="wechat", day=today())

    mismatch = StatementMismatch.objects.get()
    assert (mismatch.kind, mismatch.reference, mismatch.refund_reference) == (
        Kind.STATUS,
        attempt.reference,
        refund.request.reference,
    )
    assert (mismatch.ours, mismatch.theirs) == (f"refund pending {refund.amount}", f"refund succeeded {refund.amount}")


def test_a_bill_not_made_yet_records_nothing_and_the_day_stays_due(db: None, settings: Any) -> None:
    with wechat_pay_fake(settings) as fake:
        fake.fail_next(1, path="/v3/bill/tradebill", code="STATEMENT_CREATING", status=400)
        with pytest.raises(ProviderUnavailable):
            services.statement_reconcile(provider_name="wechat", day=today() - timedelta(days=1))

    assert not StatementReconciliation.objects.exists()
    assert not StatementMismatch.objects.exists()
    due = services.statement_days_due(provider_name="wechat", today=today(), lookback_days=2)
    assert due == [today() - timedelta(days=2), today() - timedelta(days=1)]


def test_the_daily_job_is_scheduled_after_the_bills_exist_in_chinas_day() -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["reconcile-statements"]
    assert entry["task"] == tasks.reconcile_statements.name
    schedule = entry["schedule"]
    assert isinstance(schedule, crontab)
    # Beat reads the crontab in the app's time zone: it must be China's, where WeChat Pay's bill of a day
    # exists from 10:00 the next morning.
    assert str(celery_app.timezone) == "Asia/Shanghai"
    hours, minutes = schedule.hour, schedule.minute  # type: ignore[attr-defined]  # celery-types leaves them out
    runs = sorted(datetime(2026, 3, 2, hour, minute, tzinfo=SHANGHAI) for hour in hours for minute in minutes)
    assert runs[0] > datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)
    assert len(runs) > 1  # a bill not made yet at the first run is fetched at a later one that day


def test_the_task_reconciles_every_configured_rail_through_a_worker(
    settings: Any, fake_alipay: FakeAlipay, private_redis: Any, celery_on: Any, start_worker: Any, wait_until: Any
) -> None:
    yesterday, day_before = today() - timedelta(days=1), today() - timedelta(days=2)
    StatementReconciliation.objects.create(provider="wechat", day=day_before, lines=99, mismatches=0)
    with wechat_pay_fake(settings) as wechat:
        paid = {
            rail.name: rail.pay() for rail in (Rail("wechat", "native", wechat), Rail("alipay", "page", fake_alipay))
        }
        wechat.inject_bill_mismatch(paid["wechat"].reference, None)
        broker = private_redis()
        celery_on(broker)
        environment = {**wechat.environment(), **fake_alipay.environ(), "PAYMENT_STATEMENT_LOOKBACK_DAYS": "2"}
        start_worker(broker, "statements", **environment)

        # staff's "that day, again"
        tasks.reconcile_statements.delay(today().isoformat())
        wait_until(
            lambda: StatementReconciliation.objects.filter(day=today()).count() == 3,
            timeout=60,
            what="the worker to reconcile the sandbox's, WeChat Pay's and Alipay's bills of today",
        )
        # beat's run: the days still due, for every rail
        tasks.reconcile_statements.delay()
        wait_until(
            lambda: StatementReconciliation.objects.filter(day__lt=today()).count() == 6,
            timeout=60,
            what="the worker to reconcile the last two days' bills of every rail",
        )

    reconciled = StatementReconciliation.objects.values_list("provider", "day")
    rails = {"sandbox", "wechat", "alipay"}
    assert set(reconciled) == {(rail, day) for rail in rails for day in (today(), yesterday, day_before)}
    # a day already reconciled is not fetched again
    assert StatementReconciliation.objects.get(provider="wechat", day=day_before).lines == 99
    mismatch = StatementMismatch.objects.get()
    assert (mismatch.provider, mismatch.day, mismatch.kind, mismatch.reference) == (
        "wechat",
        today(),
        Kind.MISSING_THERE,
        paid["wechat"].reference,
    )
    assert Payment.objects.filter(status=Payment.Status.SUCCEEDED).count() == 2


def test_staff_reconcile_a_day_by_hand(db: None, settings: Any) -> None:
    with wechat_pay_fake(settings) as wechat:
        attempt = Rail("wechat", "native", wechat).pay()
        wechat.inject_bill_mismatch(attempt.reference, attempt.amount + 1)
        out = io.StringIO()
        call_command("reconcile_statements", "--day", today().isoformat(), "--provider", "wechat", stdout=out)
        with pytest.raises(CommandError, match="no payment provider 'paypal'"):
            call_command("reconcile_statements", "--day", today().isoformat(), "--provider", "paypal")

    assert out.getvalue() == f"wechat {today()}: bill lines 1, mismatches 1 (1 new)\n"
    assert StatementMismatch.objects.get().kind == Kind.AMOUNT


# -- the jobs that query the rails one attempt at a time ------------------------------------------------------------


@pytest.mark.parametrize("job", ["reconcile", "expire"])
def test_the_reconcile_and_expiry_jobs_ask_each_attempts_own_rail(
    db: None, settings: Any, fake_alipay: FakeAlipay, job: str
) -> None:
    settings.PAYMENT_RECONCILE_AFTER_MINUTES = 0
    with wechat_pay_fake(settings) as wechat:
        rails = [Rail("wechat", "native", wechat), Rail("alipay", "page", fake_alipay)]
        attempts = [rail.paid_at_the_rail() for rail in rails]
        payment_ids = [attempt.payment_id for attempt in attempts]
        if job == "expire":
            Payment.objects.filter(pk__in=payment_ids).update(expires_at=timezone.now() - timedelta(minutes=1))
            outcome = tasks.expire_unpaid_payments()
        else:
            outcome = tasks.reconcile_pending_payments()

    assert outcome == {str(payment_id): "payment succeeded; orders paid" for payment_id in payment_ids}
    assert set(Payment.objects.filter(pk__in=payment_ids).values_list("status", flat=True)) == {
        Payment.Status.SUCCEEDED
    }
