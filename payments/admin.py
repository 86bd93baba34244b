from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Count, Sum
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from orders import registry
from orders.admin import StatusChangeInline
from payments.models import (
    GatewayEvent,
    Payment,
    PaymentAllocation,
    PaymentAttempt,
    PaymentAttemptStatusChange,
    PaymentStatusChange,
    Refund,
    RefundRequest,
    RefundRequestStatusChange,
    RefundStatusChange,
    StatementMismatch,
    StatementReconciliation,
)
from payments.services import mismatches_resolve


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


ATTEMPT_INLINE_FIELDS = (
    "reference",
    "provider",
    "method",
    "status",
    "amount",
    "refunded_amount",
    "transaction_id",
    "needs_attention",
    "attention_note",
    "created_at",
)


class AttemptInline(admin.TabularInline):
    """Every try at paying the payment, read-only. How the shopper was sent to pay (a URL, a QR code's text)
    is left out: it says nothing staff need, and nothing secret is shown here."""

    model = PaymentAttempt
    extra = 0
    can_delete = False
    show_change_link = True
    fields = readonly_fields = ATTEMPT_INLINE_FIELDS
    ordering = ["created_at", "pk"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def _filtered_changelist(model, payment: Payment) -> str:
    return reverse(f"admin:payments_{model._meta.model_name}_changelist") + f"?payment__id__exact={payment.pk}"


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    """A merged payment may cover thousands of orders: the page summarises them and links to a paged list,
    instead of an inline row per allocation (5,000 of them made a page some 300,000 pixels tall)."""

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
    list_filter = ["status", "needs_attention", "created_at"]
    search_fields = ["reference", "owner__username", "batch__id"]
    inlines = [AttemptInline, StatusChangeInline.of(PaymentStatusChange)]
    list_select_related = ["owner"]
    readonly_fields = ["orders_paid", "refunds_summary"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "reference",
                    "batch",
                    "owner",
                    "status",
                    "amount",
                    "refunded_amount",
                    "currency",
                    "paid_at",
                    "expires_at",
                    "created_at",
                    "updated_at",
                ]
            },
        ),
        (_("Orders and refunds"), {"fields": ["orders_paid", "refunds_summary"]}),
        (_("Staff attention"), {"fields": ["needs_attention", "attention_note"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("owner", "batch")

    @admin.display(description=_("orders paid for"))
    def orders_paid(self, payment):
        totals = payment.allocations.aggregate(count=Count("pk"), amount=Sum("amount"))
        summary = ngettext(
            "%(count)d order, %(amount)s %(currency)s in all",
            "%(count)d orders, %(amount)s %(currency)s in all",
            totals["count"],
        ) % {"count": totals["count"], "amount": totals["amount"] or 0, "currency": payment.currency}
        return format_html(
            '{} · <a href="{}" id="payment-allocations">{}</a>',
            summary,
            _filtered_changelist(PaymentAllocation, payment),
            _("see each order's share"),
        )

    @admin.display(description=_("refunds"))
    def refunds_summary(self, payment):
        by_status = (
            payment.refunds.values("status").annotate(count=Count("pk"), amount=Sum("amount")).order_by("status")
        )
        if not by_status:
            return _("none")
        labels = dict(Refund.Status.choices)
        parts = [
            _("%(count)d %(status)s (%(amount)s)") % {**row, "status": labels.get(row["status"], row["status"])}
            for row in by_status
        ]
        requests = payment.refund_requests.count()
        summary = format_html(
            '{} · <a href="{}" id="payment-refunds">{}</a> · <a href="{}" id="payment-refund-requests">{}</a>',
            ", ".join(parts),
            _filtered_changelist(Refund, payment),
            _("see each refund"),
            _filtered_changelist(RefundRequest, payment),
            ngettext("%(count)d request to the rail", "%(count)d requests to the rail", requests) % {"count": requests},
        )
        # The refund of a whole capture that could not be honoured is the one staff come here about: name it.
        unhonoured = payment.refunds.filter(kind=Refund.Kind.UNHONOURED).first()
        if unhonoured is None:
            return summary
        link = reverse("admin:payments_refund_change", args=[unhonoured.pk])
        return format_html(
            '{}<br>{} <a href="{}">{}</a> ({})',
            summary,
            _("Everything captured is being returned:"),
            link,
            unhonoured.reference,
            unhonoured.get_status_display(),
        )


@admin.register(PaymentAttempt)
class PaymentAttemptAdmin(ReadOnlyAdmin):
    """Attempts on their own: the ones a rail paid when the payment could not take it are flagged."""

    list_display = ["reference", "payment", "provider", "method", "status", "amount", "needs_attention", "created_at"]
    list_filter = ["needs_attention", "status", "provider", "created_at"]
    search_fields = ["reference", "transaction_id", "payment__reference"]
    list_select_related = ["payment"]
    fields = [
        "reference",
        "payment",
        "provider",
        "method",
        "status",
        "amount",
        "currency",
        "refunded_amount",
        "transaction_id",
        "expires_at",
        "needs_attention",
        "attention_note",
        "created_at",
        "updated_at",
    ]
    inlines = [StatusChangeInline.of(PaymentAttemptStatusChange)]


@admin.register(PaymentAllocation)
class PaymentAllocationAdmin(ReadOnlyAdmin):
    """Each order's share of a payment, reached from the payment's page (filtered to that payment)."""

    list_display = ["order_number", "order_kind", "order_status", "amount", "payment"]
    list_select_related = ["order", "payment"]
    search_fields = ["order__number", "payment__reference"]
    ordering = ["-payment_id", "order__row_index"]
    list_per_page = 100
    # Counting every allocation in the table on each page is the slow part of a large changelist.
    show_full_result_count = False

    def has_delete_permission(self, request, obj=None):
        return False  # an allocation is part of the payment's bookkeeping

    @admin.display(description=_("order"), ordering="order__number")
    def order_number(self, allocation):
        url = reverse("admin:orders_order_change", args=[allocation.order_id])
        return format_html('<a href="{}">{}</a>', url, allocation.order.number)

    @admin.display(description=_("kind"))
    def order_kind(self, allocation):
        return registry.label(allocation.order.kind)

    @admin.display(description=_("status"))
    def order_status(self, allocation):
        return allocation.order.get_status_display()


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = [
        "reference",
        "payment",
        "attempt",
        "kind",
        "order",
        "amount",
        "status",
        "request",
        "reason",
        "created_at",
    ]
    list_filter = ["status", "kind", "created_at"]
    search_fields = [
        "reference",
        "payment__reference",
        "attempt__reference",
        "order__number",
        "provider_reference",
        "request__reference",
    ]
    inlines = [StatusChangeInline.of(RefundStatusChange)]
    list_select_related = ["payment", "attempt", "order", "request"]


class CarriedRefundInline(admin.TabularInline):
    """The refunds one request carries to the rail, read-only: each order's own share and status."""

    model = Refund
    fk_name = "request"
    extra = 0
    can_delete = False
    show_change_link = True
    fields = readonly_fields = ("reference", "kind", "order", "amount", "status", "reason", "created_at")
    ordering = ["pk"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(RefundRequest)
class RefundRequestAdmin(ReadOnlyAdmin):
    """What the rail was asked for: one refund number, the sum of the refunds it carries."""

    list_display = ["reference", "payment", "attempt", "amount", "status", "refund_count", "requested_at", "created_at"]
    list_filter = ["status", "created_at"]
    search_fields = ["reference", "provider_reference", "payment__reference", "attempt__reference"]
    list_select_related = ["payment", "attempt"]
    fields = [
        "reference",
        "payment",
        "attempt",
        "amount",
        "status",
        "reason",
        "provider_reference",
        "requested_at",
        "created_at",
        "updated_at",
    ]
    inlines = [CarriedRefundInline, StatusChangeInline.of(RefundRequestStatusChange)]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(carried=Count("refunds"))

    @admin.display(description=_("refunds"), ordering="carried")
    def refund_count(self, refund_request):
        return refund_request.carried


@admin.register(GatewayEvent)
class GatewayEventAdmin(ReadOnlyAdmin):
    list_display = ["event_id", "type", "payment", "attempt", "outcome", "needs_attention", "received_at"]
    list_filter = [("needs_attention", admin.BooleanFieldListFilter), "type", "provider"]
    search_fields = ["event_id", "payment__reference", "attempt__reference"]
    list_select_related = ["payment", "attempt"]


class ResolvedFilter(admin.SimpleListFilter):
    title = _("resolved")
    parameter_name = "resolved"

    def lookups(self, request, model_admin):
        return [("no", _("No")), ("yes", _("Yes"))]

    def queryset(self, request, queryset):
        if self.value() in ("no", "yes"):
            return queryset.filter(resolved_at__isnull=self.value() == "no")
        return queryset


class ResolveForm(forms.Form):
    note = forms.CharField(label=_("What was found, and what was done"), max_length=255, widget=forms.Textarea)


@admin.register(StatementMismatch)
class StatementMismatchAdmin(ReadOnlyAdmin):
    """What a rail's daily bill and our records disagree on. Read-only but for resolving: the bill is the
    rail's, our records are changed only through the rails' word (a query, a notification)."""

    list_display = [
        "day",
        "provider",
        "kind",
        "reference",
        "refund_reference",
        "ours",
        "theirs",
        "noted_at",
        "is_resolved",
        "resolved_by",
    ]
    list_filter = ["provider", "day", "kind", ResolvedFilter]
    search_fields = ["reference", "refund_reference"]
    list_select_related = ["resolved_by"]
    date_hierarchy = "day"
    actions = ["resolve"]
    fields = [
        "provider",
        "day",
        "kind",
        "reference",
        "refund_reference",
        "ours",
        "theirs",
        "noted_at",
        "resolved_at",
        "resolved_by",
        "resolution_note",
    ]

    def has_delete_permission(self, request, obj=None):
        return False  # resolved, never forgotten

    def has_resolve_permission(self, request):
        return request.user.has_perm("payments.change_statementmismatch")

    @admin.display(description=_("resolved"), boolean=True, ordering="resolved_at")
    def is_resolved(self, mismatch):
        return mismatch.resolved_at is not None

    @admin.action(description=_("Mark resolved, with a note"), permissions=["resolve"])
    def resolve(self, request, queryset):
        form = ResolveForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            count = mismatches_resolve(
                mismatch_ids=queryset.values_list("pk", flat=True),
                user_id=request.user.pk,
                note=form.cleaned_data["note"],
            )
            self.message_user(
                request,
                ngettext("%(count)d mismatch resolved.", "%(count)d mismatches resolved.", count) % {"count": count},
                messages.SUCCESS,
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Resolve statement mismatches"),
            "opts": self.model._meta,
            "mismatches": queryset,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/payments/statementmismatch/resolve.html", context)


@admin.register(StatementReconciliation)
class StatementReconciliationAdmin(ReadOnlyAdmin):
    """Which rails' bills of which days were compared with our records, and when."""

    list_display = ["day", "provider", "lines", "mismatches", "reconciled_at"]
    list_filter = ["provider", "day"]
    date_hierarchy = "day"
