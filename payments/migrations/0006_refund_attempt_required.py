# Every refund refunds an attempt, now that each existing one has it (0005); a payment keeps no rail of its own.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('payments', '0005_each_payment_its_attempt'),
    ]

    operations = [
        migrations.AlterField(
            model_name='refund',
            name='attempt',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='refunds', to='payments.paymentattempt'),
        ),
        migrations.AddConstraint(
            model_name='refund',
            constraint=models.UniqueConstraint(condition=models.Q(('kind', 'unhonoured'), models.Q(('status', 'failed'), _negated=True)), fields=('attempt',), name='refund_one_live_unhonoured_per_attempt'),
        ),
        migrations.RemoveField(
            model_name='payment',
            name='gateway_url',
        ),
        migrations.RemoveField(
            model_name='payment',
            name='provider',
        ),
    ]
