"""Every error the API and the webhook answer is JSON in one shape, {"detail", "code", ...}, whoever refuses the
request: DRF, Django before the view (host, body size, CSRF), the URL resolver or a handler. The website keeps
its HTML pages."""

import copy
import json

import pytest
from django.test import RequestFactory
from rest_framework.test import APIClient

from config import errors
from tests.factories import UserFactory


def assert_json_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = json.loads(response.content)
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["code"], str) and body["code"]
    if code is not None:
        assert body["code"] == code
    return body


def test_no_credentials_is_a_401_in_json_with_www_authenticate(db):
    response = APIClient().get("/api/v1/batches/")

    assert_json_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"


def test_a_wrong_token_is_a_401_in_json(db):
    response = APIClient(HTTP_AUTHORIZATION="Token nope").get("/api/v1/batches/")

    assert_json_error(response, 401, "authentication_failed")


def test_a_token_with_a_nul_is_a_401_in_json(db):
    response = APIClient(HTTP_AUTHORIZATION="Token abc\x00def").get("/api/v1/batches/")

    assert_json_error(response, 401, "authentication_failed")


def test_a_non_staff_refund_is_a_403_in_json(api_client):
    assert_json_error(api_client.post("/api/v1/payments/1/refunds/", {"order": 1}, format="json"), 403)


def test_a_session_post_without_csrf_token_is_a_403_in_json(db):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(UserFactory())

    response = client.post("/api/v1/batches/", {"rows": []}, format="json")

    assert "CSRF" in assert_json_error(response, 403, "permission_denied")["detail"]


@pytest.mark.parametrize("path", ["/api/v1/nowhere/", "/api/v2/batches/", "/payments/webhooks/sandbox/nowhere/"])
def test_an_unknown_machine_path_is_a_404_in_json(client, db, path):
    assert_json_error(client.get(path), 404, "not_found")


def test_an_unknown_website_path_keeps_the_html_page(client, db):
    response = client.get("/nowhere/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_method_the_api_does_not_offer_is_a_405_in_json(api_client):
    response = api_client.delete("/api/v1/batches/")

    assert_json_error(response, 405, "method_not_allowed")
    assert "POST" in response["Allow"]


def test_an_accept_header_for_another_format_is_a_406_in_json(api_client):
    assert_json_error(api_client.get("/api/v1/products/", HTTP_ACCEPT="application/xml"), 406, "not_acceptable")


def test_a_host_not_allowed_is_a_400_in_json_on_the_api_and_html_on_the_site(client, db):
    assert_json_error(client.get("/api/v1/products/", HTTP_HOST="evil.example"), 400, "disallowed_host")

    page = client.get("/accounts/login/", HTTP_HOST="evil.example")
    assert page.status_code == 400 and page["Content-Type"].startswith("text/html")


def test_a_nul_in_a_website_address_is_an_html_400(client, db):
    page = client.get("/payments/return/%00/")

    assert page.status_code == 400 and page["Content-Type"].startswith("text/html")


def test_the_handlers_answer_json_on_machine_paths_and_html_elsewhere():
    factory = RequestFactory()
    api, site = factory.get("/api/v1/batches/"), factory.get("/checkout/")

    assert_json_error(errors.server_error(api), 500, "server_error")
    assert_json_error(errors.permission_denied(api), 403)
    assert_json_error(errors.csrf_failure(factory.post("/payments/webhooks/sandbox/")), 403, "csrf_failed")
    assert errors.server_error(site)["Content-Type"].startswith("text/html")
    assert errors.csrf_failure(factory.post("/checkout/")).status_code == 403


def test_a_crash_in_an_api_view_is_a_500_in_json(api_client, monkeypatch):
    from orders.api import views

    def crash(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(views.ProductViewSet, "list", crash)
    api_client.raise_request_exception = False

    assert_json_error(api_client.get("/api/v1/products/"), 500, "server_error")


def test_too_many_requests_is_a_429_in_json_with_retry_after(api_client, settings):
    settings.REST_FRAMEWORK = copy.deepcopy(settings.REST_FRAMEWORK)
    settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["lookup"] = "2/minute"

    answers = [api_client.get("/api/v1/recharge/lookup/", {"phone": "13800138000"}) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert_json_error(answers[2], 429, "throttled")
    # The sliding estimate still counts part of the last window's requests for up to half a window after it.
    assert 1 <= int(answers[2]["Retry-After"]) <= 90


def _cut_this_process_database_connection(database_url: str) -> None:
    """Terminate Django's connection from another session, as a database restart or failover would."""
    import psycopg
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    with psycopg.connect(database_url, autocommit=True) as killer:
        killer.execute("SELECT pg_terminate_backend(%s)", [pid])


@pytest.mark.parametrize("path", ["/api/v1/batches/", "/payments/webhooks/sandbox/"])
def test_a_dropped_database_connection_is_a_json_503_with_retry_after(client, user, test_database_url, path):
    from django.conf import settings
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from payments import signing

    token = Token.objects.create(user=user).key
    body = json.dumps(
        {"id": "evt_1", "type": "payment.succeeded", "data": {"reference": "none", "amount": "1.00", "currency": "CNY"}}
    )
    _cut_this_process_database_connection(test_database_url)
    try:
        response = client.post(
            path,
            body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Token {token}",
            HTTP_SANDBOX_SIGNATURE=signing.sign(settings.SANDBOX_WEBHOOK_SECRET, body.encode()),
        )
    finally:
        connection.close()  # what Django does after a real request whose connection broke

    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
    assert response["Retry-After"] == "5"
