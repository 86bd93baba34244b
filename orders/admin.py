from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from orders import registry, selectors
from orders.models import Batch, BatchRow, BatchStatusChange, Order, OrderStatusChange, Product
from orders.tasks import redrive_batch
from payments import services as payment_services


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["sku", "name", "kind", "unit_price", "stock", "active"]
    list_filter = ["kind", "active"]
    list_editable = ["active"]
    search_fields = ["sku", "name"]


class BatchStatusChangeInline(admin.TabularInline):
    model = BatchStatusChange
    extra = 0
    can_delete = False
    readonly_fields = ["old_status", "new_status", "note", "created_at"]

    def has_add_permission(self, request, obj=None):
        return False


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
    inlines = [BatchStatusChangeInline]
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
    list_display = ["batch", "row_index", "kind", "outcome", "failure_code", "reference", "settled_at"]
    list_filter = ["outcome", "kind", "failure_code"]
    search_fields = ["batch__id", "reference"]
    readonly_fields = [f.name for f in BatchRow._meta.fields]
    list_select_related = ["batch"]

    def has_add_permission(self, request):
        return False


class OrderStatusChangeInline(BatchStatusChangeInline):
    model = OrderStatusChange


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["number", "owner", "kind", "description", "status", "amount", "batch", "row_index", "created_at"]
    list_filter = ["status", "kind", "created_at"]
    search_fields = ["number", "reference", "owner__username", "batch__id"]
    readonly_fields = ["description", *(f.name for f in Order._meta.fields)]
    inlines = [OrderStatusChangeInline]
    list_select_related = ["owner", "batch"]
    actions = ["refund"]

    @admin.display(description=_("What"))
    def description(self, order):
        return str(registry.describe(order))

    @admin.action(description=_("Refund the selected orders' share of their payment"))
    def refund(self, request, queryset):
        for order in queryset:
            try:
                payment_services.payment_refund_order(order=order, reason=f"refunded by {request.user}")
            except payment_services.PaymentError as refused:
                self.message_user(request, f"{order.number}: {refused}", messages.ERROR)
            else:
                self.message_user(request, _("%(number)s: refund requested") % {"number": order.number})

    def has_add_permission(self, request):
        return False
