"""The project's settings plus apps that exist only for tests (pytest and the test worker use this module)."""

from config.settings import *  # noqa: F403
from config.settings import INSTALLED_APPS, env

# An order type that no product code knows of: proof that a type is a complete plug-in (tests/ticketing);
# and a payment rail that no product code knows of (tests/testrail), offered only where a test turns it on.
INSTALLED_APPS = [*INSTALLED_APPS, "tests.ticketing", "tests.testrail"]
TEST_RAIL_ENABLED = env.bool("TEST_RAIL_ENABLED", default=False)
# Tests wait a second, not a minute, for the refunds that ride in one request (a test may set it otherwise).
PAYMENT_REFUND_GROUPING_SECONDS = env.float("PAYMENT_REFUND_GROUPING_SECONDS", default=1.0)
