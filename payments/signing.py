"""The sandbox gateway's notification signature (SPEC section 5):

    Sandbox-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

The gateway signs with it, the webhook verifies it; both sides share this module as they would share
the gateway's documentation.
"""

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Sandbox-Signature"
TOLERANCE_SECONDS = 300


class BadSignature(Exception):
    pass


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def verify(secret: str, header: str | None, body: bytes, *, now: float | None = None) -> None:
    """Raise BadSignature unless `header` signs `body` with `secret` within the tolerance."""
    if not header:
        raise BadSignature(f"missing {SIGNATURE_HEADER} header")
    parts = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        raise BadSignature("the signature has no valid timestamp") from None
    now = time.time() if now is None else now
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise BadSignature("the signature timestamp is too far from now")
    expected = _digest(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in parts.get("v1", [])):
        raise BadSignature("the signature does not match")
