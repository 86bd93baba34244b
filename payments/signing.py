"""The sandbox gateway's notification signature (SPEC section 5):

    Sandbox-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

The gateway signs with it, the webhook verifies it; both sides share this module as they would share
the gateway's documentation.
"""

import hashlib
import hmac
import re
import time

SIGNATURE_HEADER = "Sandbox-Signature"
TOLERANCE_SECONDS = 300
# The header is read strictly before anything is compared: ASCII, bounded, a timestamp of at most 12 digits
# (int() of 400 nines overflows the float subtraction) and signatures of exactly 64 hex digits
# (hmac.compare_digest refuses non-ASCII text with a TypeError).
MAX_HEADER_LENGTH = 512
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")


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
    if len(header) > MAX_HEADER_LENGTH or not header.isascii():
        raise BadSignature(f"the {SIGNATURE_HEADER} header must be ASCII of at most {MAX_HEADER_LENGTH} characters")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    stamps = parts.get("t", [])
    if len(stamps) != 1 or not _TIMESTAMP.fullmatch(stamps[0]):
        raise BadSignature("the signature has no valid timestamp")
    timestamp = int(stamps[0])
    now = time.time() if now is None else now
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise BadSignature("the signature timestamp is too far from now")
    candidates = [candidate for candidate in parts.get("v1", []) if _SIGNATURE.fullmatch(candidate)]
    expected = _digest(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise BadSignature("the signature does not match")
