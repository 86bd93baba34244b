import secrets
import uuid

from django.conf import settings
from django.db import models, transaction
from django.db.models import F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from orders import messages
from orders.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS
from orders.statuses import Stateful, StatusChange


class Product(models.Model):
    sku = models.CharField(_("SKU"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    # The order type that sells this product ("goods", "game", ...): see orders.registry.
    kind = models.CharField(_("kind"), max_length=32, default="goods", db_index=True)
    unit_price = models.DecimalField(_("unit price"), max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES)
    active = models.BooleanField(_("active"), default=True)
    stock = models.PositiveIntegerField(_("stock"), null=True, blank=True, help_text=_("Empty means unlimited."))
    # Every unit ever put on sale while stock is tracked: the stock set when tracking began plus every later
    # change staff made. Placing and releasing only move units between `stock` and orders, so
    # stock + units held by orders = stock received, always (the conservation check, orders/invariants.py).
    stock_received = models.IntegerField(_("stock received"), null=True, blank=True, editable=False)
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

    def save(self, *args, **kwargs):
        """Save; a new `stock` set here (the admin, the demo seed) is a restock, counted in `stock_received`.

        Placing takes stock with conditional UPDATEs that bypass this method, so the stock an instance was
        loaded with may be stale: saving other fields never writes it back (which would undo units taken
        meanwhile), and a new stock is counted against the stock in the database, not the one loaded.
        """
        if self._state.adding:
            self.stock_received = self.stock
            return super().save(*args, **kwargs)
        update_fields = kwargs.pop("update_fields", None)
        fields = (
            {field.name for field in self._meta.concrete_fields if not field.primary_key}
            if update_fields is None
            else set(update_fields)
        )
        restock = "stock" in fields and self.stock != getattr(self, "_stock_as_loaded", object())
        fields -= {"stock", "stock_received"}
        with transaction.atomic():
            if fields:
                super().save(*args, update_fields=fields, **kwargs)
            if restock:
                self._restock(self.stock)
            self.stock, self.stock_received = Product.objects.values_list("stock", "stock_received").get(pk=self.pk)
        self._stock_as_loaded = self.stock

    @classmethod
    def from_db(cls, db, field_names, values):
        product = super().from_db(db, field_names, values)
        product._stock_as_loaded = product.__dict__.get("stock")
        return product

    def refresh_from_db(self, using=None, fields=None, from_queryset=None):
        super().refresh_from_db(using=using, fields=fields, from_queryset=from_queryset)
        if fields is None or "stock" in fields:
            self._stock_as_loaded = self.__dict__.get("stock")

    def _restock(self, stock: int | None) -> None:
        product = Product.objects.filter(pk=self.pk)
        if stock is None:
            product.update(stock=None, stock_received=None)
            return
        # One UPDATE each, evaluated against the row as it is now: units taken since this instance was
        # loaded stay counted. Tracking that starts now counts what live orders already hold as received.
        tracked = product.filter(stock__isnull=False).update(
            stock=stock, stock_received=Coalesce(F("stock_received"), F("stock")) + stock - F("stock")
        )
        if not tracked:
            product.update(stock=stock, stock_received=stock + units_held())


def units_held() -> Coalesce:
    """The units of a product (the outer query's row) that orders still hold: placed, not cancelled or expired."""
    held = (
        Order.objects.filter(product=OuterRef("pk"))
        .exclude(status__in=Order.RELEASED_STATUSES)
        .values("product")
        .annotate(units=Sum("quantity"))
        .values("units")
    )
    return Coalesce(Subquery(held), 0)


def default_language() -> str:
    return settings.LANGUAGE_CODE


class Batch(Stateful, models.Model):
    """One checkout submission: the rows a user sent together and paid for with one payment."""

    LOCK_RANK = 10
    STATUS_LOG = "orders.BatchStatusChange"

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
    # NULL when absent: the unique constraint below must not treat two key-less batches as a clash.
    idempotency_key = models.CharField(_("idempotency key"), max_length=255, null=True, blank=True)  # noqa: DJ001
    request_fingerprint = models.CharField(max_length=64, blank=True)
    # The language the shopper used when submitting: their receipts are written in it.
    language = models.CharField(_("language"), max_length=16, default=default_language)
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

    def set_status(self, new_status: str, *, note: str = "", also=()) -> None:
        # Leaving `placing` is when placing finished, whichever way it ended.
        if self.placed_at is None and new_status != self.Status.PLACING:
            self.placed_at = timezone.now()
            also = (*also, "placed_at")
        super().set_status(new_status, note=note, also=also)

    def can_cancel(self) -> bool:
        return self.can_transition(self.Status.CANCELLED)


class BatchStatusChange(StatusChange):
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="status_changes")

    class Meta(StatusChange.Meta):
        verbose_name = _("batch status change")
        verbose_name_plural = _("batch status changes")

    def __str__(self):
        return _("Batch %(batch)s: %(old)s → %(new)s") % {
            "batch": str(self.batch_id)[:8],
            "old": self.old_status,
            "new": self.new_status,
        }


class BatchRow(Stateful, models.Model):
    """One submitted order component and what became of it: exactly one order or one recorded failure."""

    LOCK_RANK = 20
    STATUS_FIELD = "outcome"
    STATUS_LOG = "orders.BatchRowStatusChange"

    class Outcome(models.TextChoices):
        PENDING = "pending", _("pending")
        PLACED = "placed", _("placed")
        FAILED = "failed", _("failed")
        REJECTED = "rejected", _("rejected")  # invalid at submission and skipped by the user

    TRANSITIONS = {Outcome.PENDING: {Outcome.PLACED, Outcome.FAILED}}

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="rows")
    row_index = models.PositiveIntegerField(_("row"))
    kind = models.CharField(_("kind"), max_length=32)
    # The row as submitted (rejected rows) or as validated and normalised (accepted rows).
    data = models.JSONField(_("data"), default=dict)
    # NULL when absent, as on Order (whose unique constraint it is checked against); the index skips NULLs.
    reference = models.CharField(_("reference"), max_length=64, null=True, blank=True)  # noqa: DJ001
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices, default=Outcome.PENDING)
    errors = models.JSONField(_("validation errors"), default=dict, blank=True)
    # The same errors in every language of the site ({language: {field: [messages]}}), so that a skipped
    # row reads in the language of whoever looks at it later (the API keeps `errors`, as it answered).
    errors_by_language = models.JSONField(_("validation errors by language"), default=dict, blank=True)
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
    def failure_text(self) -> str:
        """Why the row failed, in the reader's language when the reason is a known one."""
        translated = messages.failure_text(
            self.failure_code, sku=self.data.get("sku", ""), reference=self.reference or ""
        )
        return translated or self.failure_message

    @property
    def errors_text(self) -> dict[str, list[str]]:
        """The validation errors of a skipped row in the reader's language (as submitted when not known)."""
        return self.errors_by_language.get(get_language() or "", self.errors)


class BatchRowStatusChange(StatusChange):
    row = models.ForeignKey(BatchRow, on_delete=models.CASCADE, related_name="status_changes")

    class Meta(StatusChange.Meta):
        verbose_name = _("batch row outcome change")
        verbose_name_plural = _("batch row outcome changes")


def new_order_number() -> str:
    # Date for people reading it, randomness so numbers reveal nothing about volume; the unique
    # constraint catches the one-in-a-trillion collision.
    return f"{timezone.localdate():%y%m%d}{secrets.randbelow(10**10):010d}"


class Order(Stateful, models.Model):
    LOCK_RANK = 40
    STATUS_LOG = "orders.OrderStatusChange"

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

    # The statuses in which an order has given back what placing reserved (batch_close_unpaid releases it).
    RELEASED_STATUSES = (Status.CANCELLED, Status.EXPIRED)

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
    # NULL when absent: order_unique_owner_reference must not treat two orders without one as a clash.
    reference = models.CharField(_("reference"), max_length=64, null=True, blank=True)  # noqa: DJ001
    # Facts its order type keeps and shows about the order (what was bought, for whom).
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


class OrderStatusChange(StatusChange):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="status_changes")

    class Meta(StatusChange.Meta):
        verbose_name = _("order status change")
        verbose_name_plural = _("order status changes")

    def __str__(self):
        return _("Order %(number)s: %(old)s → %(new)s") % {
            "number": self.order.number,
            "old": self.old_status or "—",
            "new": self.new_status,
        }


class OutboxMessage(models.Model):
    """A task run that a committed change promised (orders/outbox.py): kept until the broker has it."""

    LOCK_RANK = 90

    task = models.CharField(_("task"), max_length=200)
    args = models.JSONField(_("arguments"), default=list)
    due_at = models.DateTimeField(_("due"), default=timezone.now)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    published_at = models.DateTimeField(_("published"), null=True, blank=True)
    attempts = models.PositiveIntegerField(_("failed publishes"), default=0)
    last_error = models.CharField(_("last error"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("outbox message")
        verbose_name_plural = _("outbox messages")
        indexes = [
            models.Index(fields=["created_at"], name="outbox_waiting", condition=Q(published_at__isnull=True)),
        ]

    def __str__(self):
        state = "published" if self.published_at else "waiting"
        return f"{self.task}{tuple(self.args)} ({state})"


class Receipt(models.Model):
    """An e-mail the shopper is owed about a batch: one when it is paid, one when every order has settled.

    Recorded in the transaction that makes it due, with its sending queued in the outbox; the unique
    (batch, kind) is what makes each go out once however often it is found due, and `sent_at` is what makes a
    redelivered task harmless.
    """

    LOCK_RANK = 60

    class Kind(models.TextChoices):
        PAID = "paid", _("payment received")
        SETTLED = "settled", _("orders complete")

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="receipts")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    recipient = models.EmailField(_("recipient"))
    created_at = models.DateTimeField(_("due since"), default=timezone.now)
    # Set while a worker is sending it: another delivery of the task waits instead of sending it twice.
    claimed_at = models.DateTimeField(_("being sent since"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.CharField(_("last error"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("receipt")
        verbose_name_plural = _("receipts")
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["batch", "kind"], name="receipt_unique_batch_kind")]

    def __str__(self):
        return _("Receipt “%(kind)s” for batch %(batch)s") % {
            "kind": self.get_kind_display(),
            "batch": str(self.batch_id)[:8],
        }
