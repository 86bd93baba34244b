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
    readonly_fields = ["call", "answer", "reference", "message", "created_at"]
    fields = ["call", "answer", "reference", "message", "created_at"]

    @admin.display(description=_("outcome"))
    def answer(self, attempt):
        return attempt.outcome or _("no answer recorded")

    def has_add_permission(self, request, obj=None):
        return False


class NeedsStaffFilter(admin.SimpleListFilter):
    """Failed top-ups whose automatic refund was refused: the order is unsettled until staff retry or refund."""

    title = _("needs staff")
    parameter_name = "needs_staff"

    def lookups(self, request, model_admin):
        return [("yes", _("failed, refund refused"))]

    def queryset(self, request, queryset):
        if self.value() != "yes":
            return queryset
        return queryset.filter(status=Fulfilment.Status.FAILED).exclude(
            order__refunds__status__in=["pending", "succeeded"]
        )


@admin.register(Fulfilment)
class FulfilmentAdmin(admin.ModelAdmin):
    list_display = ["order", "status", "attempts", "queries", "upstream_reference", "last_error", "updated_at"]
    list_filter = [NeedsStaffFilter, "status"]
    search_fields = ["order__number", "upstream_reference"]
    readonly_fields = [f.name for f in Fulfilment._meta.fields]
    inlines = [UpstreamAttemptInline, StatusChangeInline.of(FulfilmentStatusChange)]
    list_select_related = ["order"]
    actions = ["retry"]

    @admin.action(description=_("Retry the top-up of the selected failed fulfilments whose refund was refused"))
    def retry(self, request, queryset):
        for fulfilment in queryset.select_related("order"):
            try:
                services.fulfilment_retry(order_id=fulfilment.order_id, by=str(request.user))
            except services.FulfilmentError as refused:
                self.message_user(request, f"{fulfilment.order.number}: {refused}", messages.ERROR)
            else:
                self.message_user(request, _("%(number)s: top-up retried") % {"number": fulfilment.order.number})

    def has_add_permission(self, request):
        return False
