"""The daily reconciliation: a rail's bill of one day, compared with what we recorded that day.

The rails' business day is China's (Asia/Shanghai), so ours is too: a payment belongs to the day our records
say its attempt was captured, a refund to the day the rail accepted it. Every difference is kept as a
`StatementMismatch` for staff; nothing is changed on its strength (the reconcile job and the refund sweep
query the rails one transaction at a time, and apply what a rail says through the notifications' path).

The rail is asked first, outside any transaction; what it says is compared and written in one short
transaction. A bill the rail has not made yet (WeChat Pay's STATEMENT_CREATING, Alipay's bill_not_exist)
raises ProviderUnavailable and records nothing: the day is asked about again later.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from payments.models import (
    PaymentAttempt,
    PaymentAttemptStatusChange,
    RefundRequest,
    StatementMismatch,
    StatementReconciliation,
)
from payments.providers import MAX_REFERENCE_LENGTH, RAIL_TIME_ZONE, StatementLine, get_provider

Kind = StatementMismatch.Kind

# What a bill's refund line may say of a refund, for each status ours may have. A refund the rail was still
# processing when it made the bill may have succeeded since; one it failed for good must be failed here.
REFUND_STATUSES_AGREEING: dict[str, frozenset[str]] = {
    "succeeded": frozenset({RefundRequest.Status.SUCCEEDED}),
    "processing": frozenset({RefundRequest.Status.PENDING, RefundRequest.Status.SUCCEEDED}),
}
REFUND_FAILED_STATUSES = frozenset({RefundRequest.Status.FAILED})


@dataclass(frozen=True)
class Finding:
    kind: str
    reference: str
    refund_reference: str
    ours: str
    theirs: str

    @property
    def key(self) -> tuple[str, str, str]:
        """What makes it the same difference on the same day (with the rail): StatementMismatch's unique key."""
        return (self.kind, self.reference, self.refund_reference)


@dataclass(frozen=True)
class StatementOutcome:
    provider: str
    day: date
    lines: int
    found: int  # differences found this time
    new: int  # of which not already noted

    def __str__(self) -> str:
        return f"{self.provider} {self.day}: bill lines {self.lines}, mismatches {self.found} ({self.new} new)"


def rail_day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a day in Asia/Shanghai."""
    start = datetime.combine(day, time.min, tzinfo=RAIL_TIME_ZONE)
    return start, start + timedelta(days=1)


def statement_reconcile(*, provider_name: str, day: date) -> StatementOutcome:
    """Compare a rail's bill of `day` with our records and note every difference; safe to run again.

    Raises UnknownProvider, ProviderUnavailable (no bill yet, or the rail unreachable: nothing recorded) and
    ProviderError (the rail refused, or its bill cannot be read).
    """
    lines = get_provider(provider_name).statement(day)
    findings = _compare(provider_name, day, lines)
    with transaction.atomic():
        noted = set(
            StatementMismatch.objects.filter(provider=provider_name, day=day).values_list(
                "kind", "reference", "refund_reference"
            )
        )
        fresh = [finding for finding in findings if finding.key not in noted]
        StatementMismatch.objects.bulk_create(
            [
                StatementMismatch(
                    provider=provider_name,
                    day=day,
                    kind=finding.kind,
                    reference=finding.reference,
                    refund_reference=finding.refund_reference,
                    ours=finding.ours[:255],
                    theirs=finding.theirs[:255],
                )
                for finding in fresh
            ],
            # Two runs of one day at once: the one that writes second adds nothing.
            ignore_conflicts=True,
        )
        StatementReconciliation.objects.update_or_create(
            provider=provider_name,
            day=day,
            defaults={"lines": len(lines), "mismatches": len(findings), "reconciled_at": timezone.now()},
        )
    return StatementOutcome(provider=provider_name, day=day, lines=len(lines), found=len(findings), new=len(fresh))


def _compare(provider_name: str, day: date, lines: list[StatementLine]) -> list[Finding]:
    payment_lines = [line for line in lines if line.kind == "payment"]
    refund_lines = [line for line in lines if line.kind == "refund"]
    findings = [
        *_compare_payments(provider_name, day, payment_lines),
        *_compare_refunds(provider_name, day, refund_lines),
    ]
    # Keyed as stored (a line listed twice is one difference); references longer than ours are no reference of ours.
    short = (
        replace(
            finding,
            reference=finding.reference[:MAX_REFERENCE_LENGTH],
            refund_reference=finding.refund_reference[:MAX_REFERENCE_LENGTH],
        )
        for finding in findings
    )
    return list({finding.key: finding for finding in short}.values())


def _compare_payments(provider_name: str, day: date, lines: list[StatementLine]) -> Iterable[Finding]:
    attempts = {
        attempt.reference: attempt
        for attempt in PaymentAttempt.objects.filter(
            provider=provider_name, reference__in={line.reference for line in lines}
        ).only("reference", "amount", "status")
    }
    on_bill = set()
    for line in lines:
        on_bill.add(line.reference)
        theirs = f"{line.status} {line.amount}"
        attempt = attempts.get(line.reference)
        if attempt is None:
            yield Finding(Kind.MISSING_HERE, line.reference, "", "", theirs)
            continue
        ours = f"{attempt.status} {attempt.amount}"
        captured_here = attempt.status in PaymentAttempt.CAPTURED
        if captured_here != (line.status == "succeeded"):
            yield Finding(Kind.STATUS, line.reference, "", ours, theirs)
        if line.amount != attempt.amount:
            yield Finding(Kind.AMOUNT, line.reference, "", ours, theirs)
    for attempt in _captured_on(provider_name, day):
        if attempt.reference not in on_bill:
            yield Finding(Kind.MISSING_THERE, attempt.reference, "", f"{attempt.status} {attempt.amount}", "")


def _captured_on(provider_name: str, day: date) -> list[PaymentAttempt]:
    """The rail's attempts our records say were captured (paid, honoured or not) during `day`."""
    captured = PaymentAttemptStatusChange.objects.filter(
        attempt__provider=provider_name,
        new_status__in=PaymentAttempt.CAPTURED,
        created_at__gte=rail_day_bounds(day)[0],
        created_at__lt=rail_day_bounds(day)[1],
    ).values("attempt_id")
    return list(PaymentAttempt.objects.filter(pk__in=captured, status__in=PaymentAttempt.CAPTURED).order_by("pk"))


def _compare_refunds(provider_name: str, day: date, lines: list[StatementLine]) -> Iterable[Finding]:
    """A bill's refund line names one refund request (our refund number), which may carry many orders' refunds."""
    refunds = {
        refund.reference: refund
        for refund in RefundRequest.objects.filter(
            attempt__provider=provider_name, reference__in={line.refund_reference for line in lines}
        ).only("reference", "amount", "status")
    }
    on_bill = set()
    for line in lines:
        on_bill.add(line.refund_reference)
        theirs = f"refund {line.status} {line.amount}"
        refund = refunds.get(line.refund_reference)
        if refund is None:
            yield Finding(Kind.MISSING_HERE, line.reference, line.refund_reference, "", theirs)
            continue
        ours = f"refund {refund.status} {refund.amount}"
        if refund.status not in REFUND_STATUSES_AGREEING.get(line.status, REFUND_FAILED_STATUSES):
            yield Finding(Kind.STATUS, line.reference, line.refund_reference, ours, theirs)
        if line.amount != refund.amount:
            yield Finding(Kind.AMOUNT, line.reference, line.refund_reference, ours, theirs)
    start, end = rail_day_bounds(day)
    succeeded = (
        RefundRequest.objects.filter(attempt__provider=provider_name, status=RefundRequest.Status.SUCCEEDED)
        .annotate(accepted_at=Coalesce("requested_at", "created_at"))
        .filter(accepted_at__gte=start, accepted_at__lt=end)
        .annotate(attempt_reference=F("attempt__reference"))
        .order_by("pk")
    )
    for refund in succeeded:
        if refund.reference not in on_bill:
            ours = f"refund {refund.status} {refund.amount}"
            yield Finding(Kind.MISSING_THERE, refund.attempt_reference, refund.reference, ours, "")


def statement_days_due(*, provider_name: str, today: date, lookback_days: int) -> list[date]:
    """The days before `today` (up to `lookback_days` back) whose bill from this rail was not reconciled yet."""
    days = [today - timedelta(days=back) for back in range(lookback_days, 0, -1)]
    done = set(
        StatementReconciliation.objects.filter(provider=provider_name, day__in=days).values_list("day", flat=True)
    )
    return [day for day in days if day not in done]


def mismatches_resolve(*, mismatch_ids: Iterable[int], user_id: int, note: str) -> int:
    """Staff looked into these mismatches: they are resolved, by whom and why. Already resolved ones keep
    their first resolution. Returns how many were resolved now."""
    note = note.strip()[:255]
    if not note:
        raise ValueError("a resolution needs a note")
    return StatementMismatch.objects.filter(pk__in=list(mismatch_ids), resolved_at__isnull=True).update(
        resolved_at=timezone.now(), resolved_by_id=user_id, resolution_note=note
    )
