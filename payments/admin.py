from django.contrib import admin

from orders.admin import StatusChangeInline
from payments.models import GatewayEvent, Payment, PaymentAllocation, PaymentStatusChange, Refund, RefundStatusChange


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class PaymentAllocationInline(ReadOnlyInline):
    model = PaymentAllocation
    readonly_fields = ["order", "amount"]


class RefundInline(ReadOnlyInline):
    model = Refund
    readonly_fields = ["reference", "kind", "order", "amount", "status", "reason", "provider_reference", "created_at"]


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = [
        "reference",
        "owner",
        "status",
        "amount",
        "refunded_amount",
        "currency",
        "needs_attention",
        "created_at",
    ]
    list_filter = ["status", "needs_attention", "provider", "created_at"]
    search_fields = ["reference", "owner__username", "batch__id"]
    inlines = [PaymentAllocationInline, RefundInline, StatusChangeInline.of(PaymentStatusChange)]
    list_select_related = ["owner"]


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ["reference", "payment", "kind", "order", "amount", "status", "reason", "created_at"]
    list_filter = ["status", "kind", "created_at"]
    search_fields = ["reference", "payment__reference", "order__number", "provider_reference"]
    inlines = [StatusChangeInline.of(RefundStatusChange)]
    list_select_related = ["payment", "order"]


@admin.register(GatewayEvent)
class GatewayEventAdmin(ReadOnlyAdmin):
    list_display = ["event_id", "type", "payment", "outcome", "needs_attention", "received_at"]
    list_filter = [("needs_attention", admin.BooleanFieldListFilter), "type", "provider"]
    search_fields = ["event_id", "payment__reference"]
    list_select_related = ["payment"]
