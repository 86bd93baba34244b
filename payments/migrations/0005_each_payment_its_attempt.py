# Every existing payment gets its one attempt (payments/migrations/0004_payment_attempts.py made the tables).

from django.db import migrations, models
from django.db.models import OuterRef, Subquery, Sum

PAID = ("succeeded", "partially_refunded", "refunded")


def give_each_payment_its_attempt(apps, schema_editor):
    """Every payment so far was paid (or not) on the one sandbox charge it registered under its own
    reference: that becomes its one attempt, under the same reference, so that the sandbox's records and
    notifications still name it, and every refund refunds it."""
    Payment = apps.get_model("payments", "Payment")
    PaymentAttempt = apps.get_model("payments", "PaymentAttempt")
    Refund = apps.get_model("payments", "Refund")
    GatewayEvent = apps.get_model("payments", "GatewayEvent")
    unhonoured = set(Refund.objects.filter(kind="unhonoured").values_list("payment_id", flat=True))
    refunded = dict(
        Refund.objects.filter(status="succeeded").values("payment_id").annotate(total=Sum("amount")).values_list(
            "payment_id", "total"
        )
    )
    attempts = []
    for payment in Payment.objects.order_by("pk").iterator(chunk_size=1000):
        if payment.status in PAID:
            status = "succeeded"
        elif payment.status == "pending":
            status = "open"
        elif payment.status == "failed":
            status = "declined"
        else:
            status = "unhonoured" if payment.pk in unhonoured else "closed"
        attempts.append(
            PaymentAttempt(
                payment_id=payment.pk,
                provider=payment.provider,
                method="page",
                reference=payment.reference,
                amount=payment.amount,
                currency=payment.currency,
                expires_at=payment.expires_at,
                status=status,
                redirect_url=payment.gateway_url,
                refunded_amount=refunded.get(payment.pk, 0),
                needs_attention=status == "unhonoured" and payment.needs_attention,
                attention_note=payment.attention_note if status == "unhonoured" else "",
                created_at=payment.created_at,
            )
        )
    PaymentAttempt.objects.bulk_create(attempts, batch_size=1000)
    the_attempt = Subquery(PaymentAttempt.objects.filter(payment_id=OuterRef("payment_id")).values("pk")[:1])
    Refund.objects.update(attempt_id=the_attempt)
    GatewayEvent.objects.filter(payment__isnull=False).update(attempt_id=the_attempt)
    Refund.objects.exclude(provider_reference="").update(requested_at=models.F("updated_at"))
    # A payment's refunded amount now counts its orders' refunds only; what went back of an unhonoured
    # capture is counted on its attempt.
    shares = Refund.objects.filter(payment_id=OuterRef("pk"), kind="share", status="succeeded")
    Payment.objects.filter(pk__in=unhonoured).update(
        refunded_amount=models.functions.Coalesce(
            Subquery(shares.values("payment_id").annotate(total=Sum("amount")).values("total")[:1]),
            0,
            output_field=models.DecimalField(max_digits=12, decimal_places=2),
        )
    )


def take_the_attempts_back(apps, schema_editor):
    Payment = apps.get_model("payments", "Payment")
    PaymentAttempt = apps.get_model("payments", "PaymentAttempt")
    Refund = apps.get_model("payments", "Refund")
    GatewayEvent = apps.get_model("payments", "GatewayEvent")
    for payment in Payment.objects.order_by("pk").iterator(chunk_size=1000):
        first = PaymentAttempt.objects.filter(payment_id=payment.pk).order_by("pk").first()
        if first is not None:
            payment.provider = first.provider
            payment.gateway_url = first.redirect_url[:500]
        payment.refunded_amount = (
            Refund.objects.filter(payment_id=payment.pk, status="succeeded").aggregate(total=Sum("amount"))["total"]
            or 0
        )
        payment.save(update_fields=["provider", "gateway_url", "refunded_amount"])
    Refund.objects.update(attempt=None)
    GatewayEvent.objects.update(attempt=None)
    PaymentAttempt.objects.all().delete()




class Migration(migrations.Migration):

    dependencies = [
        ('payments', '0004_payment_attempts'),
    ]

    operations = [
        migrations.RunPython(give_each_payment_its_attempt, take_the_attempts_back),
    ]
