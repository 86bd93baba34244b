from django.apps import AppConfig


class TestRailConfig(AppConfig):
    """A test-only payment rail, registered exactly as a real rail's module registers its provider."""

    name = "tests.testrail"
    label = "testrail"

    def ready(self):
        from payments import providers
        from tests.testrail.provider import QrTestProvider

        providers.register(QrTestProvider())
