from django.apps import AppConfig


class SandboxGatewayConfig(AppConfig):
    """The built-in sandbox payment gateway: a stand-in for an external one, kept apart from the shop.

    The shop reaches it only through payments.providers.SandboxProvider and hears from it only through
    signed webhooks, exactly as it would with a real gateway.
    """

    name = "payments.sandbox"
    label = "sandbox_gateway"
    verbose_name = "Sandbox gateway"
