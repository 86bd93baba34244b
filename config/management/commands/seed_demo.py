"""Demo data for `./run start`: what a newcomer needs to try every example in the SPEC and the README.

It runs on every start, so it only ever adds what is missing. A row that exists is left exactly as it
is: staff may have changed a price, taken a product off sale, or sold stock, and a restart must not undo
that (it once reset stock and so made cancelled reservations give back more than ever existed).
"""

import secrets
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from rest_framework.authtoken.models import Token

from orders.models import Product

DEMO_USERNAME = "demo"
# The demo user's password as first generated, so later starts can print it again without resetting it.
DEMO_PASSWORD_FILE = settings.BASE_DIR / "var" / "demo-password"
# SPEC §4's game row uses the account "user-123456"; the other patterns show that each product has its own.
DEMO_PRODUCTS = [
    # sku, name, kind, unit price, stock (None: unlimited), attributes
    ("TSHIRT-M", "T-shirt, size M", "goods", "59.00", 500, {}),
    ("MUG-RED", "Red mug", "goods", "25.50", 200, {}),
    ("POSTER-A2", "Poster A2", "goods", "18.00", None, {}),
    ("GAME-GOLD-60", "60 gold coins", "game", "6.00", None, {"account_pattern": r"user-[0-9]{4,12}"}),
    ("GAME-GOLD-300", "300 gold coins", "game", "30.00", None, {"account_pattern": r"user-[0-9]{4,12}"}),
    ("GAME-GEMS-100", "100 gems", "game", "9.90", None, {"account_pattern": r"[0-9]{6,12}"}),
    ("GAME-PASS-MONTH", "Monthly pass", "game", "28.00", None, {}),
]


class Command(BaseCommand):
    help = "Create the demo products and the demo user when they are missing, and print how to log in."

    def handle(self, *args, **options):
        with transaction.atomic():
            created = self._products()
            user, password = self._demo_user()
            token, _ = Token.objects.get_or_create(user=user)
        if created:
            self.stdout.write(f"demo products created: {', '.join(created)}")
        if password is None:
            password = f"(unknown: set one with `python manage.py changepassword {DEMO_USERNAME}`)"
        self.stdout.write(
            f"demo user: {DEMO_USERNAME}  password: {password}  API token: {token.key}  (staff, can use /admin/)"
        )

    def _products(self) -> list[str]:
        created = []
        for sku, name, kind, price, stock, attributes in DEMO_PRODUCTS:
            _, was_created = Product.objects.get_or_create(
                sku=sku,
                defaults={
                    "name": name,
                    "kind": kind,
                    "unit_price": Decimal(price),
                    "stock": stock,
                    "attributes": attributes,
                },
            )
            if was_created:
                created.append(sku)
        return created

    def _demo_user(self):
        """The demo user, created with a fresh password the first time; the password is None when unknown."""
        User = get_user_model()
        user = User.objects.filter(username=DEMO_USERNAME).first()
        if user is None:
            password = secrets.token_urlsafe(9)
            user = User.objects.create_superuser(DEMO_USERNAME, "demo@example.com", password)
            DEMO_PASSWORD_FILE.parent.mkdir(parents=True, exist_ok=True)
            DEMO_PASSWORD_FILE.write_text(password + "\n")
            DEMO_PASSWORD_FILE.chmod(0o600)
            return user, password
        try:
            password = DEMO_PASSWORD_FILE.read_text().strip()
        except OSError:
            return user, None
        # Someone may have changed it since: print it only while it still works.
        return user, password if user.check_password(password) else None
