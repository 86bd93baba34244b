from django.apps import AppConfig


class TicketingConfig(AppConfig):
    """A test-only order type, registered exactly as a product app registers its own."""

    name = "tests.ticketing"
    label = "ticketing"

    def ready(self):
        from orders import registry
        from tests.ticketing.order_types import EventTicketType

        registry.register(EventTicketType())
