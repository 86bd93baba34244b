import secrets

from django.db import models
from django.utils import timezone


def new_charge_reference() -> str:
    return f"ch_{secrets.token_urlsafe(16)}"


def new_refund_reference() -> str:
    return f"re_{secrets.token_urlsafe(16)}"


def new_event_id() -> str:
    return f"evt_{secrets.token_urlsafe(16)}"


class SandboxCharge(models.Model):
    class Status(models.TextChoices):
        OPEN = "open"
        PAID = "paid"
        DECLINED = "declined"
        CLOSED = "closed"  # the merchant closed it unpaid

    reference = models.CharField(max_length=64, unique=True, default=new_charge_reference)
    merchant_reference = models.CharField(max_length=64, unique=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    description = models.CharField(max_length=255)
    items = models.JSONField(default=list)
    notify_url = models.URLField(max_length=500)
    return_url = models.URLField(max_length=500, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"sandbox charge {self.reference}: {self.amount} {self.currency}, {self.status}"


class SandboxRefund(models.Model):
    reference = models.CharField(max_length=64, unique=True, default=new_refund_reference)
    # The merchant's own refund number: asking twice with one number refunds once (null: refunds made
    # before the sandbox took one).
    merchant_reference = models.CharField(max_length=64, unique=True, null=True)  # noqa: DJ001 - NULLs never clash
    charge = models.ForeignKey(SandboxCharge, on_delete=models.PROTECT, related_name="refunds")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"sandbox refund {self.reference}: {self.amount}"


class SandboxNotification(models.Model):
    """One event the gateway owes the merchant, delivered by a task until the merchant answers 2xx."""

    event_id = models.CharField(max_length=64, unique=True, default=new_event_id)
    charge = models.ForeignKey(SandboxCharge, on_delete=models.PROTECT, related_name="notifications")
    type = models.CharField(max_length=40)
    body = models.TextField()
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=255, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"sandbox notification {self.type} {self.event_id}"
