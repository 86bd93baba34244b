"""Reaching the sandbox gateway's page for a payment, as the shop's pay URL does."""

from urllib.parse import urlsplit

from payments import services


def gateway_path(payment) -> str:
    """The path of the sandbox's hosted page for this payment, registering the payment there if needed."""
    gateway_url = services.payment_checkout(reference=payment.reference)
    assert gateway_url is not None, f"payment {payment.reference} can no longer be paid"
    return urlsplit(gateway_url).path


def charge_reference(payment) -> str:
    return gateway_path(payment).rstrip("/").rsplit("/", 1)[1]
