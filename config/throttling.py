"""API rate limits that hold across every web process: counted in the shared cache (Redis, settings.CACHES).

DRF's own throttles keep a list of timestamps per client and write it back (read, modify, write): two processes
interleaving lose each other's requests. Here each request is one atomic INCR of a per-window counter, and the
rate is enforced over a sliding window estimated from the current and the previous counter:

    estimate = previous * (time left of the window / window) + current

Each scope has its rate in REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], read on every request (a setting change
applies at once). A refused request is not counted, and its 429 carries Retry-After: when one more would pass.
"""

from __future__ import annotations

import logging
import math
import time

from django.core.cache import cache
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    number, period = rate.split("/")
    return int(number), _PERIODS[period.strip()[0]]


class SharedRateThrottle(BaseThrottle):
    scope = ""
    timer = staticmethod(time.time)

    def identity(self, request) -> str | None:
        """Who is being counted: the user when authenticated, else the client address."""
        if request.user is not None and request.user.is_authenticated:
            return f"user:{request.user.pk}"
        return f"ip:{self.get_ident(request)}"

    def allow_request(self, request, view) -> bool:
        self._wait = None
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        identity = self.identity(request)
        if not rate or identity is None:
            return True
        limit, duration = parse_rate(rate)  # type: ignore[arg-type]  # DRF's stubs say a number; it is "10/minute"
        now = self.timer()
        window = int(now // duration)
        key = f"throttle:{self.scope}:{identity}:{duration}:"
        try:
            cache.add(key + str(window), 0, timeout=duration * 2 + 1)
            current = cache.incr(key + str(window))
            previous = cache.get(key + str(window - 1)) or 0
        except Exception:
            # The limit protects the shop; the shop does not stop when its counter store does.
            logger.exception("throttle %s: the shared cache is unreachable; request let through", self.scope)
            return True
        elapsed = now / duration - window  # fraction of the current window already gone
        if previous * (1 - elapsed) + current <= limit:
            return True
        try:
            cache.decr(key + str(window))
        except Exception:  # noqa: BLE001 - best effort: a cache failure must not turn a 429 into a 500
            logger.warning("throttle %s: could not uncount a refused request", self.scope)
        self._wait = _seconds_until_allowed(previous, current - 1, elapsed, limit) * duration
        return False

    def wait(self) -> float | None:
        return math.ceil(self._wait) if self._wait is not None else None


def _seconds_until_allowed(previous: int, current: int, elapsed: float, limit: int) -> float:
    """In windows: how long until previous * (1 - elapsed_then) + current_then + 1 <= limit."""
    left = 1 - elapsed
    if previous > 0:
        within = (previous * left + current + 1 - limit) / previous
        if within < left:
            return max(within, 0.0)
    # In the next window the current counter becomes the previous one.
    if current == 0:
        return left
    return left + max(0.0, 1 - (limit - 1) / current)


class UserThrottle(SharedRateThrottle):
    """Every API request (DEFAULT_THROTTLE_CLASSES)."""

    scope = "user"


class BatchSubmitThrottle(SharedRateThrottle):
    """Submitting a batch or re-placing its failed rows: each may place thousands of orders."""

    scope = "batches"


class LookupThrottle(SharedRateThrottle):
    """The phone number lookup the checkout calls as the user types."""

    scope = "lookup"


class TokenThrottle(SharedRateThrottle):
    """Creating an API token from a username and password: counted per client address, not per user name, so
    that a guesser cannot spread tries over many names."""

    scope = "token"

    def identity(self, request) -> str | None:
        return f"ip:{self.get_ident(request)}"
