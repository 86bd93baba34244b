"""The API as production serves it (gunicorn, DEBUG off, PostgreSQL, Redis), tested from outside over HTTP:
schemathesis over the live schema, and a throttle that holds across two server processes."""

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token

from orders import selectors, services
from tests.conftest import LOG_DIR
from tests.factories import UserFactory
from tests.orders.factories import ProductFactory
from tests.recharge.factories import game_product

SCHEMATHESIS_EXAMPLES = 40
# Operations whose valid-looking requests are refused for reasons no schema can state: the catalogue (an unknown
# SKU), the numbering plan (a phone number that is not a mobile), the batch's state (no failed rows), and which
# orders a payment covers. For them a 400 is a correct answer to schema-valid data; every other check and
# operation keeps schemathesis' defaults.
STATE_DEPENDENT_400 = [
    "POST /api/v1/batches/",
    "GET /api/v1/recharge/lookup/",
    "POST /api/v1/batches/{id}/retry-failed/",
    "POST /api/v1/payments/{id}/refunds/",
]
POSITIVE_EXPECTED = ["2xx", "3xx", "400", "401", "403", "404", "409", "429"]


def _request(url: str, token: str):
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


@pytest.fixture
def shop(transactional_db, carrier_discounts):
    """A staff user with a token, and one placed batch with its pending payment, committed for the server."""
    user = UserFactory(staff=True)
    for sku in ("TSHIRT-M", "POSTER-A2"):
        ProductFactory(sku=sku, unit_price=Decimal("20.00"), stock=100)
    game_product()
    batch = services.batch_submit(
        owner=user,
        rows=[{"kind": "goods", "sku": "TSHIRT-M", "quantity": 2}, {"kind": "goods", "sku": "POSTER-A2"}],
    ).batch
    for row_index in (0, 1):
        services.order_place(batch_id=batch.pk, row_index=row_index)
    services.batch_finalize(batch_id=batch.pk, results=selectors.batch_results_from_database(batch))
    batch.refresh_from_db()
    return {"token": Token.objects.create(user=user).key, "batch": batch}


def _config(path: Path, shop) -> Path:
    batch = shop["batch"]
    dictionaries = {
        "batch_ids": [str(batch.pk)],
        "order_ids": list(batch.orders.values_list("pk", flat=True)),
        "payment_ids": [batch.payment.pk],
        "skus": ["TSHIRT-M", "POSTER-A2", "GAME-GOLD-60"],
    }
    # Half the cases use an id that exists, so that the 200 bodies are checked against the schema too.
    real_ids = {
        "GET /api/v1/batches/{id}/": ("path.id", "batch_ids"),
        "POST /api/v1/batches/{id}/cancel/": ("path.id", "batch_ids"),
        "POST /api/v1/batches/{id}/retry-failed/": ("path.id", "batch_ids"),
        "GET /api/v1/orders/{id}/": ("path.id", "order_ids"),
        "GET /api/v1/payments/{id}/": ("path.id", "payment_ids"),
        "POST /api/v1/payments/{id}/refunds/": ("path.id", "payment_ids"),
        "GET /api/v1/products/{sku}/": ("path.sku", "skus"),
    }
    lines = []
    for name, values in dictionaries.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}"]
    for name in sorted(set(real_ids) | set(STATE_DEPENDENT_400)):
        lines += ["[[operations]]", f'include-name = "{name}"']
        if name in real_ids:
            parameter, dictionary = real_ids[name]
            lines.append(f'parameters = {{ "{parameter}" = {{ dictionary = "{dictionary}", probability = 0.5 }} }}')
        if name in STATE_DEPENDENT_400:
            lines.append(f"checks.positive_data_acceptance.expected-statuses = {json.dumps(POSITIVE_EXPECTED)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_schemathesis_finds_no_failure_over_the_live_schema(shop, start_server, tmp_path):
    server = start_server(
        "schemathesis",
        workers=2,
        environment={
            "API_THROTTLE_USER": "100000/minute",
            "API_THROTTLE_BATCHES": "100000/minute",
            "API_THROTTLE_LOOKUP": "100000/minute",
        },
    )
    config = _config(tmp_path / "schemathesis.toml", shop)
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(config),
        "run",
        f"{server.url}/api/schema/",
        "--checks",
        "all",
        "--header",
        f"Authorization: Token {shop['token']}",
        "--max-examples",
        str(SCHEMATHESIS_EXAMPLES),
        "--seed",
        "12",
        "--workers",
        "2",
        "--no-color",
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    (LOG_DIR / "schemathesis.log").write_text(result.stdout + result.stderr)

    summary = result.stdout[result.stdout.rfind("SUMMARY") :]
    assert result.returncode == 0, result.stdout[-6000:]
    assert re.search(r"Selected: (\d+)/\1", summary), summary
    assert re.search(r"Test cases:\s+\d+ generated, \d+ passed", summary) or "0 failures" in summary, summary
    assert "undocumented" not in result.stdout.lower(), result.stdout[-6000:]


def test_the_throttle_holds_across_two_server_processes(shop, start_server):
    environment = {"API_THROTTLE_LOOKUP": "4/minute"}
    first = start_server("throttle-a", environment=environment)
    second = start_server("throttle-b", environment=environment)
    lookup = "/api/v1/recharge/lookup/?phone=13800138000"

    answers = [_request(server.url + lookup, shop["token"]) for server in (first, second, first, second, first, second)]

    assert [status for status, _, _ in answers] == [200, 200, 200, 200, 429, 429]
    for _, headers, body in answers[4:]:
        assert body["code"] == "throttled"
        assert int(headers["Retry-After"]) >= 1
    # Each process alone has seen only three requests: a per-process count would have let the fifth through.
