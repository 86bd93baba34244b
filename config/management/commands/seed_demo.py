import secrets
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from rest_framework.authtoken.models import Token

from orders.models import Product

DEMO_USERNAME = "demo"
DEMO_PRODUCTS = [
    # sku, name, kind, unit price, stock (None: unlimited), attributes
    ("TSHIRT-M", "T-shirt, size M", "goods", "59.00", 500, {}),
    ("MUG-RED", "Red mug", "goods", "25.50", 200, {}),
    ("POSTER-A2", "Poster A2", "goods", "18.00", None, {}),
]


class Command(BaseCommand):
    help = "Create the demo products and the demo user (a fresh password each run), and print how to log in."

    @transaction.atomic
    def handle(self, *args, **options):
        for sku, name, kind, price, stock, attributes in DEMO_PRODUCTS:
            Product.objects.update_or_create(
                sku=sku,
                defaults={
                    "name": name,
                    "kind": kind,
                    "unit_price": Decimal(price),
                    "stock": stock,
                    "attributes": attributes,
                    "active": True,
                },
            )
        User = get_user_model()
        user, _ = User.objects.get_or_create(username=DEMO_USERNAME, defaults={"email": "demo@example.com"})
        password = secrets.token_urlsafe(9)
        user.set_password(password)
        user.is_staff = user.is_superuser = True
        user.save()
        token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(
            f"demo user: {DEMO_USERNAME}  password: {password}  API token: {token.key}  (staff, can use /admin/)"
        )
