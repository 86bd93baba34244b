from decimal import Decimal

from django.db import migrations

# Starting discounts for the three national carriers; staff change them in the admin.
DEFAULTS = {"China Mobile": Decimal("0.990"), "China Unicom": Decimal("0.985"), "China Telecom": Decimal("0.980")}


def create_defaults(apps, schema_editor):
    CarrierDiscount = apps.get_model("recharge", "CarrierDiscount")
    for carrier, discount in DEFAULTS.items():
        CarrierDiscount.objects.get_or_create(carrier=carrier, defaults={"discount": discount})


class Migration(migrations.Migration):
    dependencies = [("recharge", "0001_initial")]

    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
