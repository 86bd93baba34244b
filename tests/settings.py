"""The project's settings plus apps that exist only for tests (pytest and the test worker use this module)."""

from config.settings import *  # noqa: F403
from config.settings import INSTALLED_APPS

# An order type that no product code knows of: proof that a type is a complete plug-in (tests/ticketing).
INSTALLED_APPS = [*INSTALLED_APPS, "tests.ticketing"]
