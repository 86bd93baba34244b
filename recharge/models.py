from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from orders.statuses import Stateful, StatusChange


class CarrierDiscount(models.Model):
    """The price of a mobile top-up is its face value times its carrier's discount; staff edit these."""

    carrier = models.CharField(
        _("carrier"), max_length=64, unique=True, help_text=_("As phonenumbers names it, e.g. China Mobile.")
    )
    discount = models.DecimalField(_("discount"), max_digits=4, decimal_places=3, default=Decimal("1.000"))

    class Meta:
        verbose_name = _("carrier discount")
        verbose_name_plural = _("carrier discounts")
        ordering = ["carrier"]
        constraints = [
            models.CheckConstraint(
                condition=Q(discount__gt=0) & Q(discount__lte=1), name="carrierdiscount_between_0_and_1"
            ),
        ]

    def __str__(self):
        return f"{self.carrier} × {self.discount}"


class Fulfilment(Stateful, models.Model):
    """Delivering one paid recharge order through the upstream top-up provider."""

    LOCK_RANK = 50
    STATUS_LOG = "recharge.FulfilmentStatusChange"

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")  # waiting for its first or next attempt
        IN_PROGRESS = "in_progress", _("in progress")  # an attempt is talking to the upstream now
        UNKNOWN = "unknown", _("outcome unknown")  # the upstream did not answer: query before anything else
        SUCCEEDED = "succeeded", _("succeeded")
        FAILED = "failed", _("failed")  # given up: the order's share is refunded

    TRANSITIONS = {
        Status.PENDING: {Status.IN_PROGRESS},
        # A top-up attempt that outlived its worker is taken over by the next one (in progress again).
        Status.IN_PROGRESS: {Status.IN_PROGRESS, Status.SUCCEEDED, Status.UNKNOWN, Status.PENDING, Status.FAILED},
        Status.UNKNOWN: {Status.UNKNOWN, Status.SUCCEEDED, Status.PENDING, Status.FAILED},
        # Staff retry a failed top-up whose refund has not gone out.
        Status.FAILED: {Status.PENDING},
    }

    order = models.OneToOneField("orders.Order", on_delete=models.PROTECT, related_name="fulfilment")
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.PENDING)
    # Both counters count the calls in the attempt log (UpstreamAttempt), one row per call.
    attempts = models.PositiveSmallIntegerField(_("top-up attempts"), default=0)
    # Attempts staff allowed beyond RECHARGE_MAX_ATTEMPTS by retrying a failed top-up.
    extra_attempts = models.PositiveSmallIntegerField(_("attempts added by staff"), default=0)
    queries = models.PositiveSmallIntegerField(_("status queries"), default=0)
    upstream_reference = models.CharField(_("upstream reference"), max_length=64, blank=True)
    last_error = models.CharField(_("last error"), max_length=255, blank=True)
    # When the next step (a retry, a status query) is due: past it by the re-drive delay, its task was lost.
    next_step_at = models.DateTimeField(_("next step due"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("fulfilment")
        verbose_name_plural = _("fulfilments")
        ordering = ["-created_at"]

    def __str__(self):
        return _("Fulfilment of order %(number)s (%(status)s)") % {
            "number": self.order.number,
            "status": self.get_status_display(),
        }

    @property
    def attempt_limit(self) -> int:
        return settings.RECHARGE_MAX_ATTEMPTS + self.extra_attempts


class FulfilmentStatusChange(StatusChange):
    fulfilment = models.ForeignKey(Fulfilment, on_delete=models.CASCADE, related_name="status_changes")

    class Meta(StatusChange.Meta):
        verbose_name = _("fulfilment status change")
        verbose_name_plural = _("fulfilment status changes")


class UpstreamAttempt(models.Model):
    """One call to the upstream provider and what it answered, for staff to see."""

    class Call(models.TextChoices):
        TOP_UP = "top_up", _("top-up")
        QUERY = "query", _("query")

    fulfilment = models.ForeignKey(Fulfilment, on_delete=models.CASCADE, related_name="upstream_attempts")
    call = models.CharField(_("call"), max_length=10, choices=Call.choices)
    # Empty while the call has no answer (a top-up is logged when it starts, so a worker that died during
    # the call leaves its attempt in the log).
    outcome = models.CharField(_("outcome"), max_length=10, blank=True)
    reference = models.CharField(_("upstream reference"), max_length=64, blank=True)
    message = models.CharField(_("message"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("at"), default=timezone.now)

    class Meta:
        verbose_name = _("upstream call")
        verbose_name_plural = _("upstream calls")
        ordering = ["created_at", "id"]

    def __str__(self):
        return _("%(call)s for order %(number)s: %(outcome)s") % {
            "call": self.get_call_display(),
            "number": self.fulfilment.order.number,
            "outcome": self.outcome,
        }


class SandboxTopUp(models.Model):
    """The sandbox upstream's own records: one per idempotency key, so a key is topped up at most once."""

    idempotency_key = models.CharField(max_length=64, unique=True)
    account = models.CharField(max_length=64)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    calls = models.PositiveIntegerField(default=0)
    # How many times the account was actually credited: the sandbox's proof that a key is honoured once.
    performed = models.PositiveIntegerField(default=0)
    reference = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"sandbox top-up {self.idempotency_key}: {self.amount} to {self.account}"
