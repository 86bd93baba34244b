from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from orders.admin import StatusChangeInline
from recharge import services
from recharge.models import CarrierDiscount, Fulfilment, FulfilmentStatusChange, UpstreamAttempt


@admin.register(CarrierDiscount)
class CarrierDiscountAdmin(admin.ModelAdmin):
    list_display = ["carrier", "discount"]
    list_editable = ["discount"]


class UpstreamAttemptInline(admin.TabularInline):
    model = UpstreamAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["call", "outcome", "reference", "message", "created_at"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Fulfilment)
class FulfilmentAdmin(admin.ModelAdmin):
    list_display = ["order", "status", "attempts", "queries", "upstream_reference", "last_error", "updated_at"]
    list_filter = ["status"]
    search_fields = ["order__number", "upstream_reference"]
    readonly_fields = [f.name for f in Fulfilment._meta.fields]
    inlines = [UpstreamAttemptInline, StatusChangeInline.of(FulfilmentStatusChange)]
    list_select_related = ["order"]
    actions = ["retry"]

    @admin.action(description=_("Retry the top-up of the selected failed fulfilments"))
    def retry(self, request, queryset):
        for fulfilment in queryset:
            try:
                services.fulfilment_retry(order_id=fulfilment.order_id)
            except services.FulfilmentError as refused:
                self.message_user(request, f"{fulfilment.order.number}: {refused}", messages.ERROR)
            else:
                self.message_user(request, _("%(number)s: top-up retried") % {"number": fulfilment.order.number})

    def has_add_permission(self, request):
        return False
