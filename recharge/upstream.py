"""The upstream top-up provider: the interface the shop fulfils recharge orders through, and its sandbox.

Every call carries an idempotency key (the order number): the provider credits an account at most once
per key, however often it is asked. An UNKNOWN outcome (timeout, no answer) means the top-up may or may
not have happened; only a query with the same key can tell.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction

from recharge.models import SandboxTopUp


class Outcome:
    SUCCESS = "success"
    FAILURE = "failure"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class TopUpResult:
    outcome: str
    reference: str = ""
    message: str = ""


class UpstreamProvider:
    name = ""

    def top_up(self, *, idempotency_key: str, account: str, amount: Decimal, kind: str) -> TopUpResult:
        raise NotImplementedError

    def query(self, *, idempotency_key: str) -> TopUpResult:
        """SUCCESS if the key was credited, FAILURE if it certainly was not, UNKNOWN if the provider cannot say."""
        raise NotImplementedError


class SandboxUpstream(UpstreamProvider):
    """Behaves by the account's last digits (SPEC section 6):

    ...0000 always fails; ...0001 fails once, then succeeds; ...0002 credits the account but times out
    once (UNKNOWN), and a later query reports success; anything else succeeds.
    """

    name = "sandbox"

    def top_up(self, *, idempotency_key: str, account: str, amount: Decimal, kind: str) -> TopUpResult:
        with transaction.atomic():
            record, _ = SandboxTopUp.objects.select_for_update().get_or_create(
                idempotency_key=idempotency_key, defaults={"account": account, "amount": amount}
            )
            record.calls += 1
            if record.performed:
                record.save(update_fields=["calls"])
                return TopUpResult(Outcome.SUCCESS, record.reference, "already topped up")
            if account.endswith("0000") or (account.endswith("0001") and record.calls == 1):
                record.save(update_fields=["calls"])
                return TopUpResult(Outcome.FAILURE, message="the carrier refused the top-up")
            record.performed += 1
            record.reference = f"up_{secrets.token_hex(8)}"
            record.save(update_fields=["calls", "performed", "reference"])
        if account.endswith("0002") and record.calls == 1:
            return TopUpResult(Outcome.UNKNOWN, message="timed out waiting for the carrier")
        return TopUpResult(Outcome.SUCCESS, record.reference)

    def query(self, *, idempotency_key: str) -> TopUpResult:
        record = SandboxTopUp.objects.filter(idempotency_key=idempotency_key).first()
        if record is not None and record.performed:
            return TopUpResult(Outcome.SUCCESS, record.reference)
        return TopUpResult(Outcome.FAILURE, message="no top-up with this key")


_PROVIDERS = {provider.name: provider for provider in (SandboxUpstream(),)}


def get_upstream() -> UpstreamProvider:
    return _PROVIDERS[settings.RECHARGE_UPSTREAM]
