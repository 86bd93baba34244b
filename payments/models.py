import secrets

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from orders.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS
from orders.statuses import Stateful, StatusChange


def new_payment_reference() -> str:
    # Opaque to the outside: the gateway and webhooks name a payment only by this.
    return f"pay_{secrets.token_urlsafe(18)}"


def new_attempt_reference() -> str:
    # Sent to the rail as its out_trade_no: 26 characters of [0-9a-z], within WeChat Pay's 6-32 and Alipay's 64.
    return "pa" + secrets.token_hex(12)


def new_refund_reference() -> str:
    # Our refund number, sent to the gateway with the request: asking again with the same number never
    # refunds twice, and the gateway's notification names the refund by it.
    return f"rfd_{secrets.token_urlsafe(18)}"


class Payment(Stateful, models.Model):
    """The one merged payment that covers every placed order of a batch."""

    LOCK_RANK = 30
    STATUS_LOG = "payments.PaymentStatusChange"

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        SUCCEEDED = "succeeded", _("succeeded")
        PARTIALLY_REFUNDED = "partially_refunded", _("partially refunded")
        REFUNDED = "refunded", _("refunded")
        # No longer reached: a declined attempt leaves the payment pending. Kept for payments declined before
        # payments took attempts.
        FAILED = "failed", _("failed")
        EXPIRED = "expired", _("expired")
        CANCELLED = "cancelled", _("cancelled")  # the customer cancelled the batch before paying

    TRANSITIONS = {
        Status.PENDING: {Status.SUCCEEDED, Status.EXPIRED, Status.CANCELLED},
        Status.SUCCEEDED: {Status.PARTIALLY_REFUNDED, Status.REFUNDED},
        Status.PARTIALLY_REFUNDED: {Status.PARTIALLY_REFUNDED, Status.REFUNDED},
        Status.REFUNDED: set(),
        Status.FAILED: set(),
        Status.EXPIRED: set(),
        Status.CANCELLED: set(),
    }

    batch = models.OneToOneField("orders.Batch", on_delete=models.PROTECT, related_name="payment")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payments")
    amount = models.DecimalField(_("amount"), max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES)
    refunded_amount = models.DecimalField(
        _("refunded"), max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES, default=0
    )
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.PENDING)
    # Our pay URL names the payment by it; the rails know only its attempts' references.
    reference = models.CharField(_("reference"), max_length=64, unique=True, default=new_payment_reference)
    # Set when a rail reported something the shop could not apply (paid after expiry, paid twice).
    needs_attention = models.BooleanField(_("needs staff attention"), default=False)
    attention_note = models.CharField(_("attention note"), max_length=255, blank=True)
    paid_at = models.DateTimeField(_("paid"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=F("amount")),
                name="payment_refund_within_amount",
            ),
        ]

    def __str__(self):
        return _("Payment %(reference)s of %(amount)s %(currency)s") % {
            "reference": self.reference,
            "amount": self.amount,
            "currency": self.currency,
        }

    @property
    def refundable_amount(self):
        """What of the orders' money may still be refunded: paid, minus order refunds done or under way."""
        committed = (
            self.refunds.filter(kind=Refund.Kind.SHARE)
            .exclude(status=Refund.Status.FAILED)
            .aggregate(total=models.Sum("amount"))["total"]
        )
        return self.amount - (committed or 0)

    def is_payable(self, now=None) -> bool:
        """Whether a new attempt may be started: pending and not past its expiry."""
        now = now or timezone.now()
        return self.status == self.Status.PENDING and (self.expires_at is None or self.expires_at > now)


class PaymentAllocation(models.Model):
    """How much of a merged payment pays for one order: the allocations sum to the payment amount."""

    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="allocations")
    order = models.OneToOneField("orders.Order", on_delete=models.PROTECT, related_name="allocation")
    amount = models.DecimalField(_("amount"), max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES)

    class Meta:
        verbose_name = _("payment allocation")
        verbose_name_plural = _("payment allocations")
        constraints = [models.CheckConstraint(condition=Q(amount__gte=0), name="allocation_amount_not_negative")]

    def __str__(self):
        return f"{self.order} ← {self.amount}"


class PaymentStatusChange(StatusChange):
    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="status_changes")

    class Meta(StatusChange.Meta):
        verbose_name = _("payment status change")
        verbose_name_plural = _("payment status changes")


class PaymentAttempt(Stateful, models.Model):
    """One try at paying a payment on one rail (sandbox, WeChat Pay, Alipay), with one of its methods.

    A payment takes as many attempts as the shopper needs: a declined or abandoned one leaves the payment
    pending. At most one attempt is the payment's success (a database constraint); money a rail captured on
    any other attempt (the shopper paid twice, or after the payment was closed) is unhonoured: refunded
    through that attempt's rail and flagged for staff.
    """

    LOCK_RANK = 35
    STATUS_LOG = "payments.PaymentAttemptStatusChange"

    class Status(models.TextChoices):
        OPEN = "open", _("open")  # handed to the rail; the shopper may still pay it
        SUCCEEDED = "succeeded", _("succeeded")  # paid, and it is what pays the payment
        UNHONOURED = "unhonoured", _("paid, not honoured")  # paid when the payment could not take it: refunded
        DECLINED = "declined", _("declined")
        FAILED = "failed", _("failed")  # the rail could not start it
        CLOSED = "closed", _("closed")  # the rail will not take money for it (expired, cancelled, closed)

    # Money a rail captured is the truth, whatever the attempt's state here: a success may follow any of
    # them (a close that crossed the shopper's payment, a start that timed out yet reached the rail).
    CAPTURED = (Status.SUCCEEDED, Status.UNHONOURED)
    TRANSITIONS = {
        Status.OPEN: {Status.SUCCEEDED, Status.UNHONOURED, Status.DECLINED, Status.FAILED, Status.CLOSED},
        Status.DECLINED: {Status.SUCCEEDED, Status.UNHONOURED, Status.CLOSED},
        Status.FAILED: {Status.SUCCEEDED, Status.UNHONOURED},
        Status.CLOSED: {Status.SUCCEEDED, Status.UNHONOURED},
    }

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="attempts")
    provider = models.CharField(_("provider"), max_length=32)
    method = models.CharField(_("method"), max_length=32)
    reference = models.CharField(_("reference"), max_length=64, unique=True, default=new_attempt_reference)
    amount = models.DecimalField(_("amount"), max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.OPEN)
    transaction_id = models.CharField(_("rail transaction id"), max_length=64, blank=True)
    # How the shopper pays it (the rail's Checkout): a page to go to, or the text of a QR code to scan.
    redirect_url = models.TextField(_("redirect URL"), blank=True)
    qr_text = models.TextField(_("QR code text"), blank=True)
    refunded_amount = models.DecimalField(
        _("refunded"), max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES, default=0
    )
    needs_attention = models.BooleanField(_("needs staff attention"), default=False)
    attention_note = models.CharField(_("attention note"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("payment attempt")
        verbose_name_plural = _("payment attempts")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="attempt_amount_positive"),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=F("amount")),
                name="attempt_refund_within_amount",
            ),
            # Whatever the rails report, one attempt pays a payment.
            models.UniqueConstraint(
                fields=["payment"], condition=Q(status="succeeded"), name="attempt_one_success_per_payment"
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="attempt_status_created")]

    def __str__(self):
        return _("Attempt %(reference)s (%(provider)s %(method)s) of %(amount)s %(currency)s") % {
            "reference": self.reference,
            "provider": self.provider,
            "method": self.method,
            "amount": self.amount,
            "currency": self.currency,
        }

    @property
    def refundable_amount(self):
        """What the rail may still give back for this attempt: its amount, minus refunds done or under way."""
        committed = self.refunds.exclude(status=Refund.Status.FAILED).aggregate(total=models.Sum("amount"))["total"]
        return self.amount - (committed or 0)


class PaymentAttemptStatusChange(StatusChange):
    attempt = models.ForeignKey(PaymentAttempt, on_delete=models.CASCADE, related_name="status_changes")

    class Meta(StatusChange.Meta):
        verbose_name = _("payment attempt status change")
        verbose_name_plural = _("payment attempt status changes")


class RefundRequest(Stateful, models.Model):
    """One refund request to a rail: our refund number (WeChat Pay's out_refund_no, Alipay's out_request_no)
    and an amount of one attempt. It carries one or more refunds: the order shares that fell due close
    together are asked for at once (WeChat Pay takes at most 50 refunds of a payment, and not too often), and
    the rail's answer to it settles every one of them. A refund of an unhonoured capture is a request of its
    own.

    Recorded (pending) before the rail is asked; a request that got no answer is asked again with the same
    number, never a new one, and one the rail acknowledged but never confirmed is asked about.
    """

    LOCK_RANK = 37
    STATUS_LOG = "payments.RefundRequestStatusChange"

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        SUCCEEDED = "succeeded", _("succeeded")
        FAILED = "failed", _("failed")

    TRANSITIONS = {Status.PENDING: {Status.SUCCEEDED, Status.FAILED}}

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refund_requests")
    attempt = models.ForeignKey(PaymentAttempt, on_delete=models.PROTECT, related_name="refund_requests")
    reference = models.CharField(_("refund number"), max_length=64, unique=True, default=new_refund_reference)
    amount = models.DecimalField(_("amount"), max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(_("reason"), max_length=255, blank=True)
    provider_reference = models.CharField(_("gateway reference"), max_length=64, blank=True, db_index=True)
    # When the rail acknowledged it; until then it is asked again with the same number.
    requested_at = models.DateTimeField(_("requested"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("refund request")
        verbose_name_plural = _("refund requests")
        ordering = ["-created_at", "-id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="refundrequest_amount_positive")]
        indexes = [models.Index(fields=["status", "created_at"], name="refundrequest_status_created")]

    def __str__(self):
        return _("Refund request %(reference)s of %(amount)s") % {"reference": self.reference, "amount": self.amount}


class RefundRequestStatusChange(StatusChange):
    request = models.ForeignKey(RefundRequest, on_delete=models.CASCADE, related_name="status_changes")

    class Meta(StatusChange.Meta):
        verbose_name = _("refund request status change")
        verbose_name_plural = _("refund request status changes")


class Refund(Stateful, models.Model):
    """Giving money back through a rail. Money moves only when the rail says it moved.

    Every refund gives back part of one attempt, through that attempt's rail. Two kinds: one order's share of
    a merged payment (staff, a failed top-up), taken from the attempt that paid it; or everything a rail
    captured on an attempt the shop could not honour (paid after the payment was cancelled or expired, or
    paid a second time), which belongs to no order. One table for both, so that both are requested,
    retried, confirmed and counted by the same code.

    Recorded first (pending), then carried to the rail by a `RefundRequest` (alone, or grouped with the
    shares that fell due close to it), whose outcome settles it.
    """

    LOCK_RANK = 50
    STATUS_LOG = "payments.RefundStatusChange"

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        SUCCEEDED = "succeeded", _("succeeded")
        FAILED = "failed", _("failed")

    TRANSITIONS = {Status.PENDING: {Status.SUCCEEDED, Status.FAILED}}

    class Kind(models.TextChoices):
        SHARE = "share", _("an order's share")
        UNHONOURED = "unhonoured", _("paid after it could no longer be honoured")

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    attempt = models.ForeignKey(PaymentAttempt, on_delete=models.PROTECT, related_name="refunds")
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices, default=Kind.SHARE)
    # Empty for a refund of a payment that could not be honoured: its orders were never paid.
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, null=True, blank=True, related_name="refunds")
    reference = models.CharField(_("reference"), max_length=64, unique=True, default=new_refund_reference)
    amount = models.DecimalField(_("amount"), max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(_("reason"), max_length=255, blank=True)
    # The request that carries it to the rail: empty while a share waits to be grouped.
    request = models.ForeignKey(
        RefundRequest,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="refunds",
        verbose_name=_("request"),
    )
    provider_reference = models.CharField(_("gateway reference"), max_length=64, blank=True, db_index=True)
    # When the rail acknowledged its request.
    requested_at = models.DateTimeField(_("requested"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
            # One live refund per order: a second request for the same order is refused by the database too.
            models.UniqueConstraint(fields=["order"], condition=~Q(status="failed"), name="refund_one_live_per_order"),
            models.CheckConstraint(
                condition=Q(kind="share", order__isnull=False) | Q(kind="unhonoured", order__isnull=True),
                name="refund_order_iff_share",
            ),
            # What was captured on an attempt that could not be honoured is given back once, whatever the
            # number of success notifications.
            models.UniqueConstraint(
                fields=["attempt"],
                condition=Q(kind="unhonoured") & ~Q(status="failed"),
                name="refund_one_live_unhonoured_per_attempt",
            ),
        ]

    def __str__(self):
        if self.order_id is None:
            return _("Refund of %(amount)s for %(payment)s") % {"amount": self.amount, "payment": self.payment}
        return _("Refund of %(amount)s for %(order)s") % {"amount": self.amount, "order": self.order}


class RefundStatusChange(StatusChange):
    refund = models.ForeignKey(Refund, on_delete=models.CASCADE, related_name="status_changes")

    class Meta(StatusChange.Meta):
        verbose_name = _("refund status change")
        verbose_name_plural = _("refund status changes")


class GatewayEvent(models.Model):
    """Every notification the gateway sent us, once: the event id makes redelivery harmless."""

    provider = models.CharField(max_length=32)
    event_id = models.CharField(max_length=100)
    type = models.CharField(max_length=40)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, null=True, related_name="events")
    attempt = models.ForeignKey(PaymentAttempt, on_delete=models.PROTECT, null=True, related_name="events")
    payload = models.JSONField()
    outcome = models.CharField(max_length=255, blank=True)
    needs_attention = models.BooleanField(default=False)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("gateway event")
        verbose_name_plural = _("gateway events")
        ordering = ["-received_at"]
        constraints = [models.UniqueConstraint(fields=["provider", "event_id"], name="gatewayevent_unique_id")]

    def __str__(self):
        return f"{self.provider} {self.type} {self.event_id}"


class StatementReconciliation(models.Model):
    """One rail's bill of one day (Asia/Shanghai), compared with our records. Its row says the day is done: the
    daily job looks again only at days without one (the rail had not made the bill yet, or could not be reached)."""

    provider = models.CharField(_("provider"), max_length=32)
    day = models.DateField(_("day"))
    lines = models.PositiveIntegerField(_("bill lines"))
    mismatches = models.PositiveIntegerField(_("mismatches found"))
    reconciled_at = models.DateTimeField(_("reconciled"), default=timezone.now)

    class Meta:
        verbose_name = _("statement reconciliation")
        verbose_name_plural = _("statement reconciliations")
        ordering = ["-day", "provider"]
        constraints = [models.UniqueConstraint(fields=["provider", "day"], name="statementreconciliation_unique_day")]

    def __str__(self):
        return _("%(provider)s bill of %(day)s") % {"provider": self.provider, "day": self.day}


class StatementMismatch(models.Model):
    """A transaction on which a rail's daily bill and our records disagree, for staff to look into.

    Found once: the key (rail, day, kind, attempt reference, refund reference) makes reconciling a day again
    add nothing new, and leaves a mismatch staff resolved as they resolved it.
    """

    class Kind(models.TextChoices):
        MISSING_HERE = "missing_here", _("on the bill, unknown to us")
        MISSING_THERE = "missing_there", _("ours, missing from the bill")
        AMOUNT = "amount", _("different amount")
        STATUS = "status", _("different status")

    provider = models.CharField(_("provider"), max_length=32)
    day = models.DateField(_("day"))
    kind = models.CharField(_("difference"), max_length=16, choices=Kind.choices)
    # The attempt's reference (the rail's out_trade_no) and, for a refund, our refund number.
    reference = models.CharField(_("reference"), max_length=64)
    refund_reference = models.CharField(_("refund reference"), max_length=64, blank=True)
    ours = models.CharField(_("our records"), max_length=255, blank=True)
    theirs = models.CharField(_("the rail's bill"), max_length=255, blank=True)
    noted_at = models.DateTimeField(_("noted"), default=timezone.now)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("resolved by"),
    )
    resolution_note = models.CharField(_("resolution note"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("statement mismatch")
        verbose_name_plural = _("statement mismatches")
        ordering = ["-day", "provider", "reference"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "day", "kind", "reference", "refund_reference"],
                name="statementmismatch_unique_finding",
            ),
            models.CheckConstraint(
                condition=Q(resolved_at__isnull=True) | ~Q(resolution_note=""),
                name="statementmismatch_resolved_with_note",
            ),
        ]
        indexes = [models.Index(fields=["resolved_at", "day"], name="mismatch_resolved_day")]

    def __str__(self):
        subject = self.refund_reference or self.reference
        return f"{self.provider} {self.day} {subject}: {self.get_kind_display()}"
