import secrets
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from orders import messages
from orders.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS


class InvalidTransition(Exception):
    """A status change that the lifecycle in SPEC section 4 does not allow."""


class Product(models.Model):
    sku = models.CharField(_("SKU"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    # The order type that sells this product ("goods", "game", ...): see orders.registry.
    kind = models.CharField(_("kind"), max_length=32, default="goods", db_index=True)
    unit_price = models.DecimalField(_("unit price"), max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES)
    active = models.BooleanField(_("active"), default=True)
    stock = models.PositiveIntegerField(_("stock"), null=True, blank=True, help_text=_("Empty means unlimited."))
    # Type-specific settings, e.g. the pattern a game account must match.
    attributes = models.JSONField(_("attributes"), default=dict, blank=True)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["sku"]
        constraints = [
            models.CheckConstraint(condition=Q(unit_price__gt=0), name="product_unit_price_positive"),
        ]

    def __str__(self):
        return f"{self.sku} — {self.name}"


class Batch(models.Model):
    """One checkout submission: the rows a user sent together and paid for with one payment."""

    class Status(models.TextChoices):
        PLACING = "placing", _("placing")
        AWAITING_PAYMENT = "awaiting_payment", _("awaiting payment")
        FAILED = "failed", _("failed")
        PAID = "paid", _("paid")
        EXPIRED = "expired", _("expired")
        CANCELLED = "cancelled", _("cancelled")

    TRANSITIONS = {
        Status.PLACING: {Status.AWAITING_PAYMENT, Status.FAILED},
        Status.AWAITING_PAYMENT: {Status.PAID, Status.EXPIRED, Status.CANCELLED},
        Status.FAILED: set(),
        Status.PAID: set(),
        Status.EXPIRED: set(),
        Status.CANCELLED: set(),
    }

    class Source(models.TextChoices):
        API = "api", _("API")
        WEB = "web", _("website")
        ADMIN = "admin", _("admin")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="batches")
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.PLACING)
    source = models.CharField(_("source"), max_length=10, choices=Source.choices, default=Source.API)
    row_count = models.PositiveIntegerField(_("rows submitted"))
    accepted_rows = models.PositiveIntegerField(_("rows accepted"))
    idempotency_key = models.CharField(_("idempotency key"), max_length=255, null=True, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True)
    retry_of = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="retries", verbose_name=_("retry of")
    )
    dispatch_count = models.PositiveSmallIntegerField(_("times dispatched"), default=0)
    dispatched_at = models.DateTimeField(_("last dispatched"), null=True, blank=True)
    # Filled when a chord callback's results did not match the accepted rows; recovery then finishes
    # the batch from the database, which is the source of truth.
    inconsistency = models.TextField(_("inconsistency"), blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    placed_at = models.DateTimeField(_("placing finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("batch")
        verbose_name_plural = _("batches")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="batch_unique_owner_idempotency_key",
            ),
            models.CheckConstraint(
                condition=Q(accepted_rows__lte=models.F("row_count")), name="batch_accepted_le_rows"
            ),
            models.CheckConstraint(condition=Q(accepted_rows__gte=1), name="batch_accepts_a_row"),
        ]
        indexes = [models.Index(fields=["status", "updated_at"], name="batch_status_updated")]

    def __str__(self):
        return _("Batch %(id)s (%(rows)s rows, %(status)s)") % {
            "id": str(self.id)[:8],
            "rows": self.row_count,
            "status": self.get_status_display(),
        }

    def set_status(self, new_status: str, *, note: str = "") -> None:
        """The one place a batch changes status: checks the lifecycle and writes the audit row."""
        if new_status not in self.TRANSITIONS[self.status]:
            raise InvalidTransition(f"batch {self.id}: {self.status} → {new_status}")
        old_status, self.status = self.status, new_status
        if new_status != self.Status.PLACING and self.placed_at is None:
            self.placed_at = timezone.now()
        self.save(update_fields=["status", "placed_at", "updated_at"])
        BatchStatusChange.objects.create(batch=self, old_status=old_status, new_status=new_status, note=note)

    def can_cancel(self) -> bool:
        return self.Status.CANCELLED in self.TRANSITIONS[self.status]


class BatchStatusChange(models.Model):
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="status_changes")
    old_status = models.CharField(max_length=20)
    new_status = models.CharField(max_length=20)
    note = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]


class BatchRow(models.Model):
    """One submitted order component and what became of it: exactly one order or one recorded failure."""

    class Outcome(models.TextChoices):
        PENDING = "pending", _("pending")
        PLACED = "placed", _("placed")
        FAILED = "failed", _("failed")
        REJECTED = "rejected", _("rejected")  # invalid at submission and skipped by the user

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="rows")
    row_index = models.PositiveIntegerField(_("row"))
    kind = models.CharField(_("kind"), max_length=32)
    # The row as submitted (rejected rows) or as validated and normalised (accepted rows).
    data = models.JSONField(_("data"), default=dict)
    reference = models.CharField(_("reference"), max_length=64, null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices, default=Outcome.PENDING)
    errors = models.JSONField(_("validation errors"), default=dict, blank=True)
    failure_code = models.CharField(_("failure code"), max_length=40, blank=True)
    failure_message = models.CharField(_("failure"), max_length=255, blank=True)
    settled_at = models.DateTimeField(_("settled"), null=True, blank=True)

    class Meta:
        verbose_name = _("batch row")
        verbose_name_plural = _("batch rows")
        ordering = ["batch", "row_index"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "row_index"], name="batchrow_unique_batch_row"),
        ]
        indexes = [
            models.Index(fields=["batch", "outcome"], name="batchrow_batch_outcome"),
            models.Index(fields=["reference"], name="batchrow_reference", condition=Q(reference__isnull=False)),
        ]

    def __str__(self):
        return f"{self.batch_id} #{self.row_index} ({self.outcome})"

    @property
    def is_settled(self) -> bool:
        return self.outcome in (self.Outcome.PLACED, self.Outcome.FAILED)

    @property
    def failure_text(self) -> str:
        """Why the row failed, in the reader's language when the reason is a known one."""
        translated = messages.failure_text(
            self.failure_code, sku=self.data.get("sku", ""), reference=self.reference or ""
        )
        return translated or self.failure_message


def new_order_number() -> str:
    # Date for people reading it, randomness so numbers reveal nothing about volume; the unique
    # constraint catches the one-in-a-trillion collision.
    return f"{timezone.localdate():%y%m%d}{secrets.randbelow(10**10):010d}"


class Order(models.Model):
    class Status(models.TextChoices):
        AWAITING_PAYMENT = "awaiting_payment", _("awaiting payment")
        PAID = "paid", _("paid")
        FULFILLING = "fulfilling", _("fulfilling")
        FULFILLED = "fulfilled", _("fulfilled")
        REFUNDED = "refunded", _("refunded")
        CANCELLED = "cancelled", _("cancelled")
        EXPIRED = "expired", _("expired")

    TRANSITIONS = {
        Status.AWAITING_PAYMENT: {Status.PAID, Status.CANCELLED, Status.EXPIRED},
        Status.PAID: {Status.FULFILLING, Status.FULFILLED, Status.REFUNDED},
        Status.FULFILLING: {Status.FULFILLED, Status.REFUNDED},
        Status.FULFILLED: {Status.REFUNDED},
        Status.REFUNDED: set(),
        Status.CANCELLED: set(),
        Status.EXPIRED: set(),
    }

    number = models.CharField(_("number"), max_length=20, unique=True, default=new_order_number, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders")
    # The batch marker: every order knows the batch request it was placed by.
    batch = models.ForeignKey(Batch, on_delete=models.PROTECT, related_name="orders")
    row_index = models.PositiveIntegerField(_("row"))
    kind = models.CharField(_("kind"), max_length=32)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, null=True, blank=True, related_name="orders")
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    unit_price = models.DecimalField(_("unit price"), max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES)
    amount = models.DecimalField(_("amount"), max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.AWAITING_PAYMENT)
    reference = models.CharField(_("reference"), max_length=64, null=True, blank=True)
    # Type-specific facts shown to people, e.g. the name of the product or the account credited.
    details = models.JSONField(_("details"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-created_at", "row_index"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "row_index"], name="order_unique_batch_row"),
            models.UniqueConstraint(
                fields=["owner", "reference"], condition=Q(reference__isnull=False), name="order_unique_owner_reference"
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="order_amount_not_negative"),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="order_quantity_positive"),
        ]

    def __str__(self):
        return _("Order %(number)s") % {"number": self.number}

    def can_transition(self, new_status: str) -> bool:
        return new_status in self.TRANSITIONS[self.status]

    def set_status(self, new_status: str, *, note: str = "") -> None:
        """The one place an order changes status: checks the lifecycle and writes the audit row."""
        if not self.can_transition(new_status):
            raise InvalidTransition(f"order {self.number}: {self.status} → {new_status}")
        old_status, self.status = self.status, new_status
        self.save(update_fields=["status", "updated_at"])
        OrderStatusChange.objects.create(order=self, old_status=old_status, new_status=new_status, note=note)


class OrderStatusChange(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="status_changes")
    old_status = models.CharField(max_length=20, blank=True)
    new_status = models.CharField(max_length=20)
    note = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
