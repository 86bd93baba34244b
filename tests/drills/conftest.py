"""What every fault drill shares: a Redis of its own that it can kill and bring back empty on the same
port, its figures (printed, and appended to var/drill-figures.txt for docs/reliability.md), and the
invariant checker that ends it.

Every test in this folder is marked `drill` (`./run test -m drill` runs them alone).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.services import PrivateRedis

FIGURES_PATH = Path(__file__).resolve().parents[2] / "var" / "drill-figures.txt"


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.drill)


class DrillRedis:
    """A private redis-server the drill can crash (SIGKILL: every queue and result is gone) and start
    again, empty, on the same port, as a restarted Redis without persistence comes back."""

    def __init__(self):
        self.server = PrivateRedis()
        self.url = self.server.start()
        self.port = self.server.port

    def kill(self) -> None:
        self.server.kill()

    def start_again(self) -> None:
        self.server = PrivateRedis(port=self.port)
        self.server.start()

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def drill_redis():
    server = DrillRedis()
    yield server
    server.stop()


@pytest.fixture
def figures(request):
    """figures(**named values): print a drill's measured figures and append them to var/drill-figures.txt."""

    def record(**values) -> None:
        shown = ", ".join(f"{name}={_shown(value)}" for name, value in values.items())
        line = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} {request.node.name}: {shown}"
        print(f"\nDRILL {line}")
        FIGURES_PATH.parent.mkdir(parents=True, exist_ok=True)
        with FIGURES_PATH.open("a") as out:
            out.write(line + "\n")

    return record


def _shown(value) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def assert_invariants_hold() -> None:
    from orders.invariants import invariants_check

    report = invariants_check()
    assert report.ok, report.summary()


def batches_with_payment(batch_ids) -> int:
    from payments.models import Payment

    return Payment.objects.filter(batch_id__in=list(batch_ids)).count()


def wait_for_payments(wait_until, batch_ids, *, since: float, timeout: float) -> float:
    """Wait until every batch has its merged payment; returns the seconds since `since` (a monotonic time)."""
    batch_ids = list(batch_ids)
    wait_until(
        lambda: batches_with_payment(batch_ids) == len(batch_ids),
        timeout=timeout,
        interval=0.2,
        what=f"the merged payment of {len(batch_ids)} batches",
    )
    return time.monotonic() - since
