"""The checkout's captcha (the seed's 验证码): one per submission, answered once for the whole batch.

django-simple-captcha keeps each challenge server-side and draws it as a raster picture at its own URL,
so the answer is never in the page; it can also speak it (with the flite synthesiser installed). The
challenge's key lives in the session, so each page shows one challenge and a new page replaces it.
Tests answer through the library's test-only CAPTCHA_TEST_MODE (the answer "passed"), never the page.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from captcha.conf import settings as captcha_settings
from captcha.fields import CaptchaField
from captcha.helpers import captcha_audio_url, captcha_image_url
from captcha.models import CaptchaStore
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

SESSION_KEY = "checkout_captcha"
PASSED_KEY = "checkout_captcha_passed_until"
# Once answered, a correction round (fixing invalid rows) does not ask again for a while.
PASSED_FOR_SECONDS = 600
MAX_ANSWER_LENGTH = 32


@dataclass(frozen=True)
class Challenge:
    image_url: str
    image_2x_url: str
    audio_url: str | None


def challenge_new(session) -> Challenge:
    """A fresh challenge for this session; it replaces any earlier one."""
    key = CaptchaStore.generate_key()
    session[SESSION_KEY] = key
    return Challenge(
        image_url=captcha_image_url(key),
        image_2x_url=reverse("captcha-image-2x", kwargs={"key": key}),
        audio_url=captcha_audio_url(key) if captcha_settings.CAPTCHA_FLITE_PATH else None,
    )


def challenge_check(session, answer: str | None) -> bool:
    """Whether `answer` solves this session's challenge. A challenge can be tried once, right or wrong."""
    key = session.pop(SESSION_KEY, None)
    if not key or not isinstance(answer, str) or len(answer) > MAX_ANSWER_LENGTH:
        return False
    try:
        # The library's own check: expiry, case, one attempt per challenge, and its test mode.
        CaptchaField().clean([key, answer])
    except ValidationError:
        return False
    session[PASSED_KEY] = time.time() + PASSED_FOR_SECONDS
    return True


def passed_recently(session) -> bool:
    return session.get(PASSED_KEY, 0) > time.time()


def forget(session) -> None:
    session.pop(PASSED_KEY, None)


@never_cache
@login_required
@require_GET
def challenge_refresh(request):
    """A new picture in place of the old one (htmx); without JavaScript the page's own button reloads it."""
    return render(request, "orders/_captcha.html", {"captcha": challenge_new(request.session)})
