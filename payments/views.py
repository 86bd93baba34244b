import logging

from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from config.errors import json_error
from payments import services
from payments.models import Payment
from payments.providers import InvalidNotification, get_provider

logger = logging.getLogger(__name__)


@csrf_exempt  # the gateway authenticates with its signature, not a cookie
@require_POST
def sandbox_webhook(request):
    provider = get_provider("sandbox")
    try:
        notification = provider.parse_notification(request.headers, request.body)
        outcome = services.notification_apply(provider_name=provider.name, notification=notification)
    except InvalidNotification as invalid:
        logger.warning("sandbox webhook refused (%s): %s", invalid.status, invalid)
        return json_error(invalid.status, invalid, "invalid_notification" if invalid.status == 400 else None)
    return JsonResponse({"detail": outcome})


def pay(request, reference):
    """The pay URL people and integrators are given: on to the gateway's page while the payment can be paid,
    otherwise back to the batch, which says what became of it."""
    gateway_url = services.payment_checkout(reference=reference)
    if gateway_url is not None:
        return redirect(gateway_url)
    payment = get_object_or_404(Payment, reference=reference)
    return redirect("web:batch-detail", batch_id=payment.batch_id)


def payment_return(request, reference):
    """Where the gateway sends the customer back; the notification may arrive before or after them, so
    the batch page waits for it."""
    payment = get_object_or_404(Payment, reference=reference)
    return redirect(reverse("web:batch-detail", args=[payment.batch_id]) + "?returned=1")
