"""Repeated failed logins, per account and address: first slowed, then locked out.

django-axes counts the failures (every login through `authenticate()`: the website, the admin and the
API token endpoint) and locks an (account, address) pair out after AXES_FAILURE_LIMIT of them for
AXES_COOLOFF_TIME (from the variables LOGIN_FAILURE_LIMIT and LOGIN_LOCKOUT_MINUTES). Before that, from
LOGIN_SLOW_AFTER failures on, the website's login form refuses to check a password until a wait has
passed that doubles with each failure. Waiting is a refusal, not a sleep: a slowed attacker holds no
server process.
"""

from __future__ import annotations

import math
from datetime import timedelta

from axes.helpers import get_client_ip_address
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.db.models import Max, Sum
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone

from accounts import messages

LOCKED_OUT_STATUS = 429


def login_seconds_to_wait(*, request, username: str) -> int:
    """How long this address must wait before its next password for this account is checked (0: now)."""
    now = timezone.now()
    attempts = AccessAttempt.objects.filter(
        username=username, ip_address=get_client_ip_address(request), attempt_time__gte=now - settings.AXES_COOLOFF_TIME
    ).aggregate(failures=Sum("failures_since_start"), last=Max("attempt_time"))
    failures = attempts["failures"] or 0
    if failures < settings.LOGIN_SLOW_AFTER or failures >= settings.AXES_FAILURE_LIMIT:
        return 0  # not yet slowed, or already locked out, which django-axes answers itself
    wait = min(
        settings.LOGIN_SLOW_SECONDS * 2 ** (failures - settings.LOGIN_SLOW_AFTER), settings.LOGIN_SLOW_MAX_SECONDS
    )
    remaining = (attempts["last"] + timedelta(seconds=wait) - now).total_seconds()
    return max(0, math.ceil(remaining))


def _lockout_minutes() -> int:
    return math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60)


def locked_out_message() -> str:
    return messages.LOCKED_OUT % {"minutes": _lockout_minutes()}


def locked_out_response(request, original_response=None, credentials=None):
    """django-axes' AXES_LOCKOUT_CALLABLE: the login page with the reason, or JSON for the API."""
    message = locked_out_message()
    retry_after = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"detail": message}, status=LOCKED_OUT_STATUS)
    else:
        username = (credentials or {}).get("username") or ""
        form = AuthenticationForm(request, initial={"username": username})
        context = {"form": form, "locked_out": message, "next": request.POST.get("next", "")}
        response = render(request, "registration/login.html", context, status=LOCKED_OUT_STATUS)
    response["Retry-After"] = retry_after
    return response
