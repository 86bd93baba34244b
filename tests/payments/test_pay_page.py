"""The pay URL people and integrators are given: the ways to pay on offer, an attempt started by choosing
one, a QR code that follows its attempt to the end, and a rail's trouble shown as a message, never a 500."""

import re
from urllib.parse import urlsplit

import pytest
from django.core.management import CommandError, call_command

from orders import services as order_services
from payments.models import Payment, PaymentAttempt
from payments.providers import ProviderError, ProviderUnavailable
from payments.sandbox import gateway
from payments.sandbox.models import SandboxNotification
from tests.payments.sandbox import charge_of

PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"
DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


@pytest.fixture
def payment(placed_batch):
    return placed_batch().payment


def pay_url(payment) -> str:
    return f"/payments/pay/{payment.reference}/"


def offered(html: str) -> list[str]:
    return re.findall(r'name="method" value="([^"]+)"', html)


def test_without_a_real_rail_the_sandbox_is_offered(client, payment):
    page = client.get(pay_url(payment))

    assert page.status_code == 200
    html = page.content.decode()
    assert offered(html) == ["sandbox:page"]
    assert 'id="pay-total">¥60.00' in html
    assert not payment.attempts.exists()  # looking at the page starts nothing


def test_only_configured_rails_are_offered_and_phones_get_their_mobile_methods(client, payment, settings):
    settings.TEST_RAIL_ENABLED = False
    assert offered(client.get(pay_url(payment), HTTP_USER_AGENT=DESKTOP).content.decode()) == ["sandbox:page"]

    settings.TEST_RAIL_ENABLED = True  # a real rail is configured: the sandbox is no longer offered

    desktop = offered(client.get(pay_url(payment), HTTP_USER_AGENT=DESKTOP).content.decode())
    phone = offered(client.get(pay_url(payment), HTTP_USER_AGENT=PHONE).content.decode())
    assert desktop == ["qrtest:qr"]
    assert phone == ["qrtest:h5"]
    # a method not on offer to this browser (or at all) starts nothing
    refused = client.post(pay_url(payment), {"method": "sandbox:page"}, HTTP_USER_AGENT=DESKTOP)
    assert refused.status_code == 400 and "Choose one of the ways to pay on offer." in refused.content.decode()
    assert not payment.attempts.exists()


def test_choosing_a_page_method_starts_an_attempt_and_goes_to_its_page(client, payment):
    response = client.post(pay_url(payment), {"method": "sandbox:page"})

    attempt = payment.attempts.get()
    assert response.status_code == 302 and response["Location"] == attempt.redirect_url
    assert (attempt.provider, attempt.method, attempt.status, attempt.amount) == ("sandbox", "page", "open", 60)
    assert re.fullmatch(r"pa[0-9a-f]{24}", attempt.reference)
    assert attempt.expires_at == payment.expires_at
    assert gateway.SandboxCharge.objects.get(merchant_reference=attempt.reference).amount == payment.amount
    # choosing again starts another attempt and leaves the first open: the shopper may still finish it
    client.post(pay_url(payment), {"method": "sandbox:page"})
    assert list(payment.attempts.values_list("status", flat=True)) == ["open", "open"]


def test_the_pay_url_of_a_payment_that_can_no_longer_be_paid_leads_back_to_the_batch(client, payment):
    order_services.batch_cancel(batch_id=payment.batch_id, owner=payment.owner)

    for response in (client.get(pay_url(payment)), client.post(pay_url(payment), {"method": "sandbox:page"})):
        assert response.status_code == 302 and response["Location"] == f"/batches/{payment.batch_id}/"
    assert not payment.attempts.exists()


@pytest.mark.parametrize(
    "error, message",
    [
        (ProviderUnavailable("timed out"), "QR test rail cannot be reached just now; nothing was charged."),
        (ProviderError("PARAM_ERROR"), "QR test rail would not start this payment; nothing was charged."),
    ],
    ids=["unavailable", "refused"],
)
def test_a_rail_that_cannot_start_the_attempt_shows_why_and_the_methods_again(
    client, payment, test_rail, error, message
):
    test_rail.start_error = error

    response = client.post(pay_url(payment), {"method": "qrtest:qr"})

    assert response.status_code == 200
    html = response.content.decode()
    assert message in html and "PARAM_ERROR" not in html and "timed out" not in html
    assert offered(html) == ["qrtest:qr"]
    attempt = payment.attempts.get()
    assert attempt.status == PaymentAttempt.Status.FAILED
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.PENDING


def test_a_qr_attempt_shows_the_code_and_moves_on_to_the_batch_once_paid(client, payment, test_rail):
    # when: the shopper chooses the QR method
    response = client.post(pay_url(payment), {"method": "qrtest:qr"})

    attempt = payment.attempts.get()
    assert attempt.qr_text and not attempt.redirect_url
    assert response["Location"] == f"/payments/attempts/{attempt.reference}/"
    page = client.get(response["Location"]).content.decode()
    # then: the code is drawn here, as inline SVG, and the page polls the attempt's status every 2 s
    svg = re.search(r'<svg[^>]*id="qr-code".*?</svg>', page, re.S).group(0)
    assert "<path" in svg and "http" not in svg  # the code's modules, never its text
    status_url = f"/payments/attempts/{attempt.reference}/status/"
    assert f'hx-get="{status_url}"' in page and 'hx-trigger="every 2s"' in page

    # while nothing is paid, the fragment says so and keeps polling
    waiting = client.get(status_url, HTTP_HX_REQUEST="true")
    assert "HX-Redirect" not in waiting and 'hx-trigger="every 2s"' in waiting.content.decode()

    # when: the phone that scanned it pays, and the rail's notification arrives
    gateway.charge_decide(charge_reference=charge_of(attempt), pay=True)
    body = SandboxNotification.objects.get(type="payment.succeeded").body.encode()
    assert post_signed(client, "/payments/webhooks/qrtest/", body).status_code == 200

    # then: the fragment sends the page on to the batch, which is paid
    paid = client.get(status_url, HTTP_HX_REQUEST="true")
    assert paid.status_code == 200 and paid["HX-Redirect"] == f"/batches/{payment.batch_id}/"
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.SUCCEEDED
    without_js = client.get(status_url)
    assert without_js.status_code == 302 and without_js["Location"] == f"/batches/{payment.batch_id}/"


def test_a_declined_qr_attempt_says_so_and_offers_the_methods_again(client, payment, test_rail):
    client.post(pay_url(payment), {"method": "qrtest:qr"})
    attempt = payment.attempts.get()
    gateway.charge_decide(charge_reference=charge_of(attempt), pay=False)
    post_signed(client, "/payments/webhooks/qrtest/", SandboxNotification.objects.get().body.encode())

    fragment = client.get(f"/payments/attempts/{attempt.reference}/status/", HTTP_HX_REQUEST="true").content.decode()

    assert "Payment declined — try again." in fragment
    assert offered(fragment) == ["qrtest:qr"] and "hx-trigger" not in fragment  # nothing more to wait for
    assert "Payment declined — try again." in client.get(pay_url(payment)).content.decode()


def test_the_webhook_answers_as_the_provider_says(client, payment, test_rail, monkeypatch):
    client.post(pay_url(payment), {"method": "qrtest:qr"})
    gateway.charge_decide(charge_reference=charge_of(payment.attempts.get()), pay=True)
    body = SandboxNotification.objects.get().body.encode()
    answers = []

    def answer(*, applied, message=""):
        answers.append((applied, message))
        return 204, "text/plain", b""

    monkeypatch.setattr(test_rail, "answer", answer)

    response = post_signed(client, "/payments/webhooks/qrtest/", body)

    assert (response.status_code, response.content) == (204, b"")
    assert answers == [(True, "payment succeeded; orders paid")]
    assert post_signed(client, "/payments/webhooks/qrtest/", body).status_code == 204  # a duplicate: applied before
    assert answers[-1] == (True, "duplicate: already applied")


def test_preflight_names_each_problem_of_a_configured_rail_on_a_line(db, test_rail):
    with pytest.raises(CommandError) as failed:
        call_command("preflight")

    assert str(failed.value).splitlines() == ["qrtest: TEST_RAIL_KEY: not a PEM RSA private key"]


def post_signed(client, url: str, body: bytes):
    from django.conf import settings

    from payments import signing

    signature = signing.sign(settings.SANDBOX_WEBHOOK_SECRET, body)
    return client.post(url, body, content_type="application/json", HTTP_SANDBOX_SIGNATURE=signature)


def test_the_sandbox_page_of_a_closed_attempt_takes_no_money(client, payment):
    path = urlsplit(client.post(pay_url(payment), {"method": "sandbox:page"})["Location"]).path
    order_services.batch_cancel(batch_id=payment.batch_id, owner=payment.owner)
    from payments import services

    services.attempt_close_at_rail(attempt_id=payment.attempts.get().pk)  # what the outbox's task does

    response = client.post(path, {"decision": "pay"})

    assert "closed by the merchant" in client.get(path).content.decode()
    assert response.status_code == 200 and not SandboxNotification.objects.exists()
