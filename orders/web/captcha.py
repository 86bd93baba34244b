"""The checkout's captcha (the seed's 验证码): one per submission, answered once for the whole batch.

A small arithmetic question drawn as an SVG with jittered glyphs and noise. It keeps scripted form spam
out; a shop facing determined bots swaps `challenge_new`/`challenge_check` for a hosted captcha.
"""

from __future__ import annotations

import hmac
import secrets
import time

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

SESSION_KEY = "checkout_captcha"
PASSED_KEY = "checkout_captcha_passed_until"
# Once answered, a correction round (fixing invalid rows) does not ask again for a while.
PASSED_FOR_SECONDS = 600


def challenge_new(session) -> SafeString:
    a, b = secrets.randbelow(9) + 1, secrets.randbelow(9) + 1
    session[SESSION_KEY] = str(a + b)
    return _svg(f"{a} + {b} = ?")


def challenge_check(session, answer: str) -> bool:
    expected = session.pop(SESSION_KEY, None)
    ok = expected is not None and hmac.compare_digest(expected, (answer or "").strip())
    if ok:
        session[PASSED_KEY] = time.time() + PASSED_FOR_SECONDS
    return ok


def passed_recently(session) -> bool:
    return session.get(PASSED_KEY, 0) > time.time()


def forget(session) -> None:
    session.pop(PASSED_KEY, None)


def _svg(text: str) -> SafeString:
    glyphs = format_html_join(
        "",
        '<text x="{}" y="{}" transform="rotate({} {} {})">{}</text>',
        (
            (12 + 17 * i, 28 + secrets.randbelow(7) - 3, secrets.randbelow(31) - 15, 12 + 17 * i, 24, char)
            for i, char in enumerate(text)
        ),
    )
    noise = format_html_join(
        "",
        '<line x1="{}" y1="{}" x2="{}" y2="{}"/>',
        (
            (secrets.randbelow(160), secrets.randbelow(40), secrets.randbelow(160), secrets.randbelow(40))
            for _ in range(4)
        ),
    )
    return format_html(
        '<svg class="captcha" role="img" aria-label="captcha" viewBox="0 0 170 40" width="170" height="40">'
        '<g class="noise">{}</g><g class="glyphs">{}</g></svg>',
        noise,
        glyphs,
    )
