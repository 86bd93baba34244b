import secrets

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from orders.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS


def new_payment_reference() -> str:
    # Opaque to the outside: the gateway and webhooks name a payment only by this.
    return f"pay_{secrets.token_urlsafe(18)}"


class Payment(models.Model):
    """The one merged payment that covers every placed order of a batch."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        SUCCEEDED = "succeeded", _("succeeded")
        PARTIALLY_REFUNDED = "partially_refunded", _("partially refunded")
        REFUNDED = "refunded", _("refunded")
        FAILED = "failed", _("failed")
        EXPIRED = "expired", _("expired")
        CANCELLED = "cancelled", _("cancelled")  # the customer cancelled the batch before paying

    batch = models.OneToOneField("orders.Batch", on_delete=models.PROTECT, related_name="payment")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payments")
    amount = models.DecimalField(_("amount"), max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES)
    refunded_amount = models.DecimalField(
        _("refunded"), max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES, default=0
    )
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.PENDING)
    provider = models.CharField(_("provider"), max_length=32, default="sandbox")
    reference = models.CharField(_("reference"), max_length=64, unique=True, default=new_payment_reference)
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
