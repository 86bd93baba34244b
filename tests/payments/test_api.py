from django.utils import timezone
from rest_framework.test import APIClient

from orders import services
from payments.models import PaymentAttempt
from tests.factories import UserFactory


def test_a_customer_sees_their_payment_with_its_allocations(api_client, placed_batch):
    batch = placed_batch()
    payment = batch.payment

    body = api_client.get(f"/api/v1/payments/{payment.pk}/").json()

    assert body["status"] == "pending"
    assert body["amount"] == "60.00" and body["refunded_amount"] == "0.00" and body["currency"] == "CNY"
    assert sorted(allocation["amount"] for allocation in body["orders"]) == ["10.00", "20.00", "30.00"]
    assert body["reference"] == payment.reference
    assert body["pay_url"].endswith(f"/payments/pay/{payment.reference}/")
    batch_body = api_client.get(f"/api/v1/batches/{batch.pk}/").json()
    assert batch_body["payment"]["pay_url"] == body["pay_url"]
    assert batch_body["payment"]["reference"] == payment.reference


def test_the_payment_lists_its_attempts_oldest_first(api_client, client, placed_batch):
    batch = placed_batch()
    payment = batch.payment
    client.post(f"/payments/pay/{payment.reference}/", {"method": "sandbox:page"})
    declined = payment.attempts.get()
    PaymentAttempt.objects.filter(pk=declined.pk).update(status=PaymentAttempt.Status.DECLINED)
    client.post(f"/payments/pay/{payment.reference}/", {"method": "sandbox:page"})
    second = payment.attempts.exclude(pk=declined.pk).get()

    body = api_client.get(f"/api/v1/payments/{payment.pk}/").json()

    assert body["status"] == "pending"
    assert body["attempts"] == [
        {
            "reference": attempt.reference,
            "provider": "sandbox",
            "method": "page",
            "status": status,
            "amount": "60.00",
            "created_at": attempt.created_at.astimezone(timezone.get_current_timezone()).isoformat(),
        }
        for attempt, status in ((declined, "declined"), (second, "open"))
    ]


def test_the_schema_documents_the_attempts(api_client, db):
    schema = api_client.get("/api/schema/?format=json").json()

    attempt = schema["components"]["schemas"]["Attempt"]
    assert set(attempt["properties"]) == {"reference", "provider", "method", "status", "amount", "created_at"}
    payment = schema["components"]["schemas"]["Payment"]["properties"]["attempts"]
    assert payment["items"] == {"$ref": "#/components/schemas/Attempt"}


def test_the_pay_url_of_a_cancelled_payment_leads_back_to_the_batch(client, placed_batch):
    batch = placed_batch()
    services.batch_cancel(batch_id=batch.pk, owner=batch.owner)

    response = client.get(f"/payments/pay/{batch.payment.reference}/")

    assert response.status_code == 302
    assert response["Location"] == f"/batches/{batch.pk}/"


def test_another_customers_payment_answers_404(api_client, placed_batch):
    payment = placed_batch(owner=UserFactory()).payment

    assert api_client.get(f"/api/v1/payments/{payment.pk}/").status_code == 404


def test_only_staff_may_refund(api_client, placed_batch):
    batch = placed_batch()

    response = api_client.post(f"/api/v1/payments/{batch.payment.pk}/refunds/", {"order": batch.orders.first().pk})

    assert response.status_code == 403


def staff_client():
    client = APIClient()
    client.force_authenticate(UserFactory(is_staff=True))
    return client


def test_refunding_an_unpaid_payment_is_refused(placed_batch):
    batch = placed_batch()

    response = staff_client().post(
        f"/api/v1/payments/{batch.payment.pk}/refunds/", {"order": batch.orders.first().pk}, format="json"
    )

    assert response.status_code == 409
    assert response.json()["detail"] == "Only a paid payment can be refunded; this one is pending."


def test_a_refund_request_names_a_bad_order_field(placed_batch):
    batch = placed_batch()
    other = placed_batch(prices=("5.00",))
    url = f"/api/v1/payments/{batch.payment.pk}/refunds/"
    client = staff_client()

    invalid = {"detail": "Invalid input.", "code": "invalid"}
    assert client.post(url, {}, format="json").json() == {**invalid, "order": ["This field is required."]}
    assert client.post(url, {"order": "x"}, format="json").json() == {
        **invalid,
        "order": ["A valid integer is required."],
    }
    foreign = other.orders.first().pk
    response = client.post(url, {"order": foreign}, format="json")
    assert response.status_code == 400
    message = f"Order {foreign} is not part of this payment."
    assert response.json() == {"detail": message, "code": "invalid", "order": [message]}
