"""`seed_demo` (run by every `./run start`) adds what is missing and never changes what exists, and the demo
data it adds makes every example of SPEC §4 and the README work on a freshly started site."""

import re
from decimal import Decimal
from io import StringIO
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command
from rest_framework.test import APIClient

from config.management.commands import seed_demo
from orders.models import Batch, Product
from payments.models import Payment
from tests.conftest import CAPTCHA_TEST_ANSWER

# SPEC §4, "Rows (one per order component)", verbatim.
SPEC_ROWS: list[dict[str, object]] = [
    {"kind": "goods", "sku": "TSHIRT-M", "quantity": 2},
    {"kind": "mobile", "phone": "13800138000", "face_value": "50"},
    {"kind": "game", "sku": "GAME-GOLD-60", "account": "user-123456", "quantity": 3},
]
# The README's paste formats: phone[,face value], SKU,quantity and SKU,account,quantity.
README_PASTE = "13800138000\n18612345678,100\nTSHIRT-M,2\nGAME-GOLD-60,user-123456,3\n"
CREDENTIALS = re.compile(r"demo user: demo  password: (\S+)  API token: (\w+)")


@pytest.fixture
def seed(monkeypatch, tmp_path):
    """Run the command as `./run start` does, keeping the demo password file away from the developer's."""
    monkeypatch.setattr(seed_demo, "DEMO_PASSWORD_FILE", tmp_path / "demo-password")

    def run() -> str:
        out = StringIO()
        call_command("seed_demo", stdout=out)
        return out.getvalue()

    return run


def demo_api(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def place(api, wait_for_batch, body, **headers):
    response = api.post("/api/v1/batches/", body, format="json", **headers)
    assert response.status_code == 202, response.json()
    return wait_for_batch(response.json()["id"]), response


def test_seeding_again_after_staff_edits_and_a_sale_leaves_stock_price_and_flags_alone(seed, worker, wait_for_batch):
    # given: a started site, a staff edit and a sale of 150 of the 200 red mugs
    password, token = CREDENTIALS.search(seed()).groups()
    Product.objects.filter(sku="TSHIRT-M").update(unit_price=Decimal("55.00"), stock=7)
    Product.objects.filter(sku="POSTER-A2").update(active=False)
    api = demo_api(token)
    batch, _ = place(api, wait_for_batch, {"rows": [{"kind": "goods", "sku": "MUG-RED", "quantity": 150}]})
    assert batch.status == Batch.Status.AWAITING_PAYMENT
    before = {p.sku: (p.unit_price, p.stock, p.active, p.name, p.attributes) for p in Product.objects.all()}

    # when: the site restarts
    output = seed()

    # then: nothing that existed changed, and the cancelled sale gives back exactly what it took
    assert {p.sku: (p.unit_price, p.stock, p.active, p.name, p.attributes) for p in Product.objects.all()} == before
    assert before["MUG-RED"][1] == 50 and before["TSHIRT-M"][:2] == (Decimal("55.00"), 7)
    assert CREDENTIALS.search(output).groups() == (password, token)  # the demo login still works as printed
    assert "demo products created" not in output
    assert api.post(f"/api/v1/batches/{batch.pk}/cancel/").status_code == 200
    assert Product.objects.get(sku="MUG-RED").stock == 200


def test_seeding_adds_a_product_that_is_missing_without_touching_the_others(seed, db):
    seed()
    Product.objects.filter(sku="GAME-GOLD-300").delete()
    Product.objects.filter(sku="MUG-RED").update(stock=3)

    output = seed()

    assert "demo products created: GAME-GOLD-300" in output
    assert Product.objects.get(sku="MUG-RED").stock == 3


def test_the_seeded_catalogue_has_goods_and_at_least_three_game_currency_products(seed, db):
    seed()

    kinds = list(Product.objects.values_list("kind", flat=True))
    assert kinds.count("goods") >= 3 and kinds.count("game") >= 3
    assert Product.objects.filter(sku="GAME-GOLD-60", kind="game", active=True).exists()


def test_every_example_of_the_spec_and_the_readme_works_on_a_freshly_seeded_site(
    seed, live_server, worker, client, carrier_discounts, wait_for_batch, wait_until
):
    # The token endpoint's per-address throttle counts in the shared cache: the schema tests that ran just before
    # may have used this minute's allowance from the same address.
    cache.clear()
    password, printed_token = CREDENTIALS.search(seed()).groups()

    # POST /api/v1/auth/token/ (username + password)
    token = APIClient().post("/api/v1/auth/token/", {"username": "demo", "password": password}, format="json")
    assert token.status_code == 200, token.json()
    assert token.json() == {"token": printed_token}
    api = demo_api(printed_token)

    # POST /api/v1/batches/ with SPEC §4's rows, each with an integrator's reference, and an Idempotency-Key
    rows = [{**row, "reference": f"spec-{index}"} for index, row in enumerate(SPEC_ROWS)]
    body = {"rows": rows, "skip_invalid": False}
    batch, accepted = place(api, wait_for_batch, body, HTTP_IDEMPOTENCY_KEY="spec-example")
    assert accepted.json()["rejected_rows"] == []
    detail = api.get(f"/api/v1/batches/{batch.pk}/").json()
    assert (detail["status"], detail["placed"], detail["failed"]) == ("awaiting_payment", 3, 0)
    assert sorted(order["reference"] for order in detail["orders"]) == ["spec-0", "spec-1", "spec-2"]
    again = api.post("/api/v1/batches/", body, format="json", HTTP_IDEMPOTENCY_KEY="spec-example")
    assert again.json()["id"] == str(batch.pk)

    # every face value on offer, for a number of each national carrier, and every seeded game product
    numbers = ["13800138000", "18612345678", "18912345678"]
    mobile = [
        {"kind": "mobile", "phone": n, "face_value": str(v)} for n in numbers for v in settings.RECHARGE_FACE_VALUES
    ]
    game = [
        {"kind": "game", "sku": "GAME-GOLD-300", "account": "user-123456", "quantity": 1},
        {"kind": "game", "sku": "GAME-GEMS-100", "account": "12345678", "quantity": 2},
        {"kind": "game", "sku": "GAME-PASS-MONTH", "account": "player_one", "quantity": 1},
    ]
    more, _ = place(api, wait_for_batch, {"rows": mobile + game, "skip_invalid": False})
    assert api.get(f"/api/v1/batches/{more.pk}/").json()["placed"] == len(mobile) + len(game)

    # the listings of SPEC §4
    for url in ("/api/v1/batches/", "/api/v1/orders/", "/api/v1/products/", "/api/v1/products/GAME-GOLD-60/"):
        assert api.get(url).status_code == 200, url
    payment = Payment.objects.get(batch=batch)
    payment_body = api.get(f"/api/v1/payments/{payment.pk}/")
    assert payment_body.status_code == 200

    # paid at the sandbox gateway (the pay URL offers it, and choosing it leads there), then
    # POST /api/v1/payments/{id}/refunds/ {"order": id} (the demo user is staff)
    pay_url = urlsplit(payment_body.json()["pay_url"]).path
    assert 'value="sandbox:page"' in client.get(pay_url).content.decode()
    to_gateway = client.post(pay_url, {"method": "sandbox:page"})
    assert to_gateway.status_code == 302
    pay_page = urlsplit(to_gateway["Location"]).path
    assert client.post(pay_page, {"decision": "pay"}).status_code == 302
    wait_until(lambda: Payment.objects.filter(pk=payment.pk, status="succeeded").exists(), timeout=30, what="payment")
    goods_order = next(order for order in detail["orders"] if order["kind"] == "goods")
    refund = api.post(f"/api/v1/payments/{payment.pk}/refunds/", {"order": goods_order["id"]}, format="json")
    assert refund.status_code == 201, refund.json()

    # the README's paste formats, on the website's checkout
    client.force_login(batch.owner)
    page = client.post(
        "/checkout/",
        {
            "rows-TOTAL_FORMS": "1",
            "rows-INITIAL_FORMS": "0",
            "rows-0-kind": "goods",
            "import": "1",
            "text": README_PASTE,
            "mobile-default_face_value": "50",
            "captcha": CAPTCHA_TEST_ANSWER,
        },
    )
    html = page.content.decode()
    assert page.status_code == 200
    assert 'name="rows-TOTAL_FORMS" value="4"' in html
    assert "4 valid rows" in html, re.findall(r'class="field-errors"[^>]*>([^<]+)', html)
