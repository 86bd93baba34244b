"""Waiting for something another process does, by looking at it rather than by sleeping a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(Exception):
    """What was waited for did not happen in time; the message names it."""


def wait_until(predicate: Callable[[], T], *, timeout: float, what: str, interval: float = 0.05) -> T:
    """Call `predicate` until it returns something true and return that; `timeout` seconds at most.

    `what` completes "gave up waiting for ...", so that a failure says what never happened.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"gave up waiting for {what} after {timeout:.0f}s")
        time.sleep(interval)
