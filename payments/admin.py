from django.contrib import admin

from payments.models import Payment, PaymentAllocation


class PaymentAllocationInline(admin.TabularInline):
    model = PaymentAllocation
    extra = 0
    can_delete = False
    readonly_fields = ["order", "amount"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = ["reference", "owner", "status", "amount", "refunded_amount", "currency", "created_at"]
    list_filter = ["status", "provider", "created_at"]
    search_fields = ["reference", "owner__username", "batch__id"]
    readonly_fields = [f.name for f in Payment._meta.fields]
    inlines = [PaymentAllocationInline]
    list_select_related = ["owner"]

    def has_add_permission(self, request):
        return False
