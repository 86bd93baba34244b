from __future__ import annotations

from typing import TYPE_CHECKING, cast

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from orders import billing, registry, selectors
from orders import messages as order_messages
from orders.billing import untranslated
from orders.goods import ProductOrderType
from orders.models import (
    Batch,
    BatchRow,
    BatchRowStatusChange,
    BatchStatusChange,
    Order,
    OrderStatusChange,
    Product,
    Receipt,
)
from orders.tasks import redrive_batch

if TYPE_CHECKING:
    from django_stubs_ext import StrPromise


def product_kind_choices() -> list[tuple[str, str | StrPromise]]:
    """The registered order types that sell products, so staff pick a kind instead of typing one."""
    return [
        (order_type.kind, order_type.label or order_type.kind)
        for order_type in registry.all_types()
        if isinstance(order_type, ProductOrderType)
    ]


class ProductForm(forms.ModelForm):
    kind = forms.ChoiceField(label=_("kind"), choices=product_kind_choices)

    class Meta:
        model = Product
        fields = ["sku", "name", "kind", "unit_price", "active", "stock", "attributes"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        current = self.instance.kind if self.instance.pk else None
        kind_field = cast(forms.ChoiceField, self.fields["kind"])
        choices = product_kind_choices()  # what the field was built from
        if current and current not in dict(choices):
            # A product of a type no longer installed stays editable, and says why it cannot be sold.
            unregistered = _("%(kind)s (not installed)") % {"kind": current}
            kind_field.choices = [*choices, (current, unregistered)]


class KindFilter(admin.SimpleListFilter):
    """Filter by order type, offered by the names people read ("Mobile top-up"), not the codes."""

    title = _("kind")
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return [(order_type.kind, registry.label(order_type.kind)) for order_type in registry.menu()]

    def queryset(self, request, queryset):
        return queryset.filter(kind=self.value()) if self.value() else queryset


@admin.display(description=_("kind"), ordering="kind")
def kind_label(obj) -> str:
    return registry.label(obj.kind)


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    form = ProductForm
    list_display = ["sku", "name", kind_label, "unit_price", "stock", "active"]
    list_filter = [KindFilter, "active"]
    list_editable = ["active"]
    search_fields = ["sku", "name"]


class StatusChangeInline(admin.TabularInline):
    """The audit rows of a model's status changes (orders.statuses), read-only. Other apps reuse it."""

    extra = 0
    can_delete = False
    readonly_fields = ["old_status", "new_status", "note", "created_at"]

    def has_add_permission(self, request, obj=None):
        return False

    @classmethod
    def of(cls, model):
        return type(f"{model.__name__}Inline", (cls,), {"model": model})


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = ["short_id", "owner", "status", "source", "row_count", "accepted_rows", "progress", "created_at"]
    list_filter = ["status", "source", "created_at"]
    search_fields = ["id", "owner__username", "idempotency_key"]
    readonly_fields = [
        "id",
        "owner",
        "status",
        "source",
        "language",
        "row_count",
        "accepted_rows",
        "idempotency_key",
        "retry_of",
        "dispatch_count",
        "dispatched_at",
        "inconsistency",
        "created_at",
        "placed_at",
        "progress",
    ]
    exclude = ["request_fingerprint"]
    inlines = [StatusChangeInline.of(BatchStatusChange)]
    actions = ["redrive"]
    list_select_related = ["owner"]

    @admin.display(description=_("batch"))
    def short_id(self, batch):
        return str(batch.pk)[:8]

    def get_queryset(self, request):
        # One query for the whole list page instead of one count per batch.
        return selectors.batches_with_progress(super().get_queryset(request))

    @admin.display(description=_("placed / failed / pending"))
    def progress(self, batch):
        return f"{batch.placed} / {batch.failed} / {batch.pending}"

    @admin.action(description=_("Re-drive selected batches that are stuck in placing"))
    def redrive(self, request, queryset):
        if queryset.exclude(status=Batch.Status.PLACING).exists():
            self.message_user(request, _("Only batches still placing can be re-driven."), messages.ERROR)
            return
        outcomes = [redrive_batch(batch.pk) for batch in queryset]
        self.message_user(
            request,
            _("Finished %(finished)d from the database, dispatched %(dispatched)d again.")
            % {"finished": outcomes.count("finished"), "dispatched": outcomes.count("redispatched")},
        )

    def has_add_permission(self, request):
        return False


@admin.register(BatchRow)
class BatchRowAdmin(admin.ModelAdmin):
    list_display = ["batch", "row_index", kind_label, "outcome", "failure_code", "reference", "settled_at"]
    list_filter = ["outcome", KindFilter, "failure_code"]
    search_fields = ["batch__id", "reference"]
    readonly_fields = [f.name for f in BatchRow._meta.fields]
    list_select_related = ["batch"]
    inlines = [StatusChangeInline.of(BatchRowStatusChange)]

    def has_add_permission(self, request):
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = [
        "number",
        "owner",
        kind_label,
        "description",
        "status",
        "amount",
        "batch",
        "row_index",
        "created_at",
    ]
    list_filter = ["status", KindFilter, "created_at"]
    search_fields = ["number", "reference", "owner__username", "batch__id"]
    readonly_fields = ["description", *(f.name for f in Order._meta.fields)]
    inlines = [StatusChangeInline.of(OrderStatusChange)]
    list_select_related = ["owner", "batch"]
    actions = ["refund"]

    @admin.display(description=_("What"))
    def description(self, order):
        return str(registry.describe(order))

    @admin.action(description=_("Refund the selected orders' share of their payment"))
    def refund(self, request, queryset):
        for order in queryset:
            # The shopper reads the reason (result page, receipt, export) in their language; who asked for the
            # refund is in the admin's history of the order.
            try:
                billing.billing().refund_order(order=order, reason=untranslated(order_messages.REFUNDED_BY_SHOP))
            except billing.BillingRefused as refused:
                self.message_user(request, f"{order.number}: {refused}", messages.ERROR)
            else:
                self.log_change(request, order, f"refund requested by {request.user}")
                self.message_user(request, _("%(number)s: refund requested") % {"number": order.number})

    def has_add_permission(self, request):
        return False


@admin.register(Receipt)
class ReceiptAdmin(admin.ModelAdmin):
    """The e-mails shoppers are owed: one still unsent after a while has its last error here."""

    list_display = ["batch", "kind", "recipient", "created_at", "sent_at", "attempts", "last_error"]
    list_filter = ["kind", ("sent_at", admin.EmptyFieldListFilter)]
    search_fields = ["batch__id", "recipient"]
    readonly_fields = [f.name for f in Receipt._meta.fields]
    list_select_related = ["batch"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
