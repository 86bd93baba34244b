"""What the payments services answer: the one error type for people, and what applying a rail's word did."""

from __future__ import annotations

from typing import NamedTuple

from orders.billing import BillingRefused


class PaymentError(BillingRefused):
    """A payment operation that the rules do not allow; the message is for people."""


class AttemptNotStarted(PaymentError):
    """The rail could not start an attempt; nothing was charged and the shopper may choose again."""


class Applied(NamedTuple):
    """What applying a rail's word did: the outcome for the event log, and whether staff must look."""

    outcome: str
    attention: bool = False
