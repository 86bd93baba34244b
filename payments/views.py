"""The shopper's way through paying (the pay URL, the methods on offer, a QR code that follows its attempt)
and the one webhook every rail notifies."""

import logging

import segno
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from config.errors import json_error
from payments import messages, providers, services
from payments.models import Payment, PaymentAttempt

logger = logging.getLogger(__name__)


@csrf_exempt  # a rail authenticates with its signature, not a cookie
@require_POST
def webhook(request, provider):
    """Every rail's notifications: verified by its provider, applied once, answered as the rail documents."""
    try:
        rail = providers.get_provider(provider)
    except providers.UnknownProvider:
        return json_error(404, "no payment rail has this name")
    if not rail.is_configured():
        return json_error(404, "this payment rail is not configured")
    try:
        notification = rail.parse_notification(request.headers, request.body)
        outcome = services.notification_apply(provider_name=rail.name, notification=notification)
    except providers.InvalidNotification as invalid:
        logger.warning("%s webhook refused (%s): %s", rail.name, invalid.status, invalid)
        return _answer(rail.answer_refusal(invalid))
    return _answer(rail.answer(applied=True, message=outcome))


def _answer(answer: tuple[int, str, bytes]) -> HttpResponse:
    status, content_type, body = answer
    return HttpResponse(body, status=status, content_type=content_type)


def _batch_url(payment: Payment) -> str:
    return reverse("web:batch-detail", args=[payment.batch_id])


def _methods(request) -> list[providers.OfferedMethod]:
    return providers.offered_methods(mobile=providers.is_phone(request.headers.get("User-Agent", "")))


@require_http_methods(["GET", "POST"])
def pay(request, reference):
    """The pay URL people and integrators are given: the ways to pay on offer while the payment can be paid
    (POST one to start an attempt), otherwise back to the batch, which says what became of it."""
    payment = get_object_or_404(Payment, reference=reference)
    if not payment.is_payable():
        return redirect(_batch_url(payment))
    methods = _methods(request)
    error, status = "", 200
    if request.method == "POST":
        chosen = next((method for method in methods if method.key == request.POST.get("method")), None)
        if chosen is None:
            error, status = str(messages.UNKNOWN_METHOD), 400
        else:
            try:
                attempt = services.attempt_start(
                    payment_reference=reference,
                    provider_name=chosen.provider,
                    method=chosen.method,
                    client_ip=request.META.get("REMOTE_ADDR", ""),
                )
            except services.AttemptNotStarted as not_started:
                error = str(not_started)  # the methods again, with why: the shopper chooses again
            except services.PaymentError:
                return redirect(_batch_url(payment))  # it expired or was cancelled meanwhile
            else:
                if attempt.redirect_url:
                    return redirect(attempt.redirect_url)
                return redirect("payments:attempt", reference=attempt.reference)
    last = payment.attempts.order_by("-created_at", "-pk").first()
    context = {
        "payment": payment,
        "orders": payment.allocations.count(),
        "methods": methods,
        "error": error,
        "declined": error == "" and last is not None and last.status == PaymentAttempt.Status.DECLINED,
    }
    return render(request, "payments/pay.html", context, status=status)


@require_GET
def attempt_page(request, reference):
    """An attempt paid by scanning a QR code: the code, drawn here, and its status, followed until paid."""
    attempt = get_object_or_404(PaymentAttempt.objects.select_related("payment"), reference=reference)
    if attempt.payment.status != Payment.Status.PENDING:
        return redirect(_batch_url(attempt.payment))
    if attempt.redirect_url and attempt.status == PaymentAttempt.Status.OPEN:
        return redirect(attempt.redirect_url)
    qr_code = ""
    if attempt.qr_text:
        code = segno.make(attempt.qr_text, error="m")
        # segno writes the SVG itself, from the code's modules: no text of ours ends up in it.
        qr_code = mark_safe(code.svg_inline(scale=6, svgid="qr-code", title=_("QR code to scan and pay")))
    return render(request, "payments/attempt.html", {**_status_context(request, attempt), "qr_code": qr_code})


@require_GET
@vary_on_headers("HX-Request")
def attempt_status(request, reference):
    """The attempt's status, polled by its page: once the payment succeeded (or ended otherwise) the page
    moves on to the batch by itself."""
    attempt = get_object_or_404(PaymentAttempt.objects.select_related("payment"), reference=reference)
    if attempt.payment.status != Payment.Status.PENDING:
        if request.htmx:
            return HttpResponseClientRedirect(_batch_url(attempt.payment))
        return redirect(_batch_url(attempt.payment))
    return render(request, "payments/_attempt_status.html", _status_context(request, attempt))


def _status_context(request, attempt: PaymentAttempt) -> dict:
    ended = attempt.status != PaymentAttempt.Status.OPEN
    return {
        "attempt": attempt,
        "payment": attempt.payment,
        "ended": ended,
        "declined": attempt.status == PaymentAttempt.Status.DECLINED,
        "methods": _methods(request) if ended else [],
        "batch_url": _batch_url(attempt.payment),
    }


def payment_return(request, reference):
    """Where a rail sends the customer back; the notification may arrive before or after them, so the batch
    page waits for it."""
    payment = get_object_or_404(Payment, reference=reference)
    return redirect(reverse("web:batch-detail", args=[payment.batch_id]) + "?returned=1")
