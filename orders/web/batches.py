"""A shopper's batches: the live page of one batch (placing progress → merged payment → results) and
the list of all of them."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from orders import billing, export, registry, selectors, services
from orders.models import Batch, BatchRow, Order

# An order in one of these statuses is still moving after payment (its type moves it on in the same
# transaction that marks it paid), so the page keeps polling for news.
LIVE_ORDER_STATUSES = (Order.Status.FULFILLING,)


def _batch_context(request, batch: Batch) -> dict:
    progress = selectors.batch_progress(batch)
    settled = progress["placed"] + progress["failed"]
    orders = list(batch.orders.order_by("row_index"))
    payment = billing.billing().bill_of(batch)
    refunds = billing.billing().refunds(batch=batch) if batch.status == Batch.Status.PAID else {}
    for order in orders:
        # Read by the template only.
        order.description = registry.describe(order)  # type: ignore[attr-defined]
        order.kind_label = registry.label(order.kind)  # type: ignore[attr-defined]
        order.refund = refunds.get(order.pk)  # type: ignore[attr-defined]
    live = (
        batch.status == Batch.Status.PLACING
        # Back from the payment page: wait for its notification, unless it already said declined.
        or (
            batch.status == Batch.Status.AWAITING_PAYMENT
            and request.GET.get("returned")
            and not (payment is not None and payment.declined)
        )
        or any(order.status in LIVE_ORDER_STATUSES for order in orders)
    )
    return {
        "batch": batch,
        "progress": progress,
        "percent": round(100 * settled / batch.accepted_rows) if batch.accepted_rows else 100,
        "orders": orders,
        "failures": batch.rows.filter(outcome=BatchRow.Outcome.FAILED).order_by("row_index"),
        "rejected": batch.rows.filter(outcome=BatchRow.Outcome.REJECTED).order_by("row_index"),
        "payment": payment,
        "live": live,
        "returned": bool(request.GET.get("returned")),
    }


def _own_batch(request, batch_id) -> Batch:
    return get_object_or_404(Batch, pk=batch_id, owner=request.user)


@login_required
@vary_on_headers("HX-Request")
def batch_detail(request, batch_id):
    batch = _own_batch(request, batch_id)
    template = "orders/_batch_live.html" if request.htmx else "orders/batch_detail.html"
    return render(request, template, _batch_context(request, batch))


@login_required
def batch_export(request, batch_id):
    """The batch's orders and outcomes as a file to take away (?format=csv, the default, or xlsx)."""
    batch = _own_batch(request, batch_id)
    file_format = request.GET.get("format", "csv")
    if file_format not in export.FORMATS:
        raise Http404
    return export.batch_export_response(batch, file_format)


@login_required
@require_POST
def batch_cancel(request, batch_id):
    batch = _own_batch(request, batch_id)
    try:
        services.batch_cancel(batch_id=batch.pk, owner=request.user)
    except services.BatchError as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, _("The batch was cancelled; nothing will be charged."))
    return redirect("web:batch-detail", batch_id=batch.pk)


@login_required
def batch_list(request):
    batches = Batch.objects.filter(owner=request.user).order_by("-created_at")
    page = Paginator(batches, 20).get_page(request.GET.get("page"))
    bills = billing.billing().bills([batch.pk for batch in page.object_list])
    rows = [(batch, bills.get(batch.pk)) for batch in page.object_list]
    return render(request, "orders/batch_list.html", {"page": page, "rows": rows})
