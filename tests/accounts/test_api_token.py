"""`POST /api/v1/auth/token/`: a username and password for the account's API token, throttled."""

import json

import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts import messages
from tests.factories import UserFactory

TOKEN_URL = "/api/v1/auth/token/"
PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's


@pytest.fixture(autouse=True)
def fresh_throttle():
    # The throttle counts requests in the cache; each test starts with none counted.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def anonymous():
    return APIClient()


def as_token(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_the_right_password_gets_the_users_token_which_then_authenticates(anonymous, user):
    response = anonymous.post(TOKEN_URL, {"username": user.username, "password": PASSWORD}, format="json")

    assert response.status_code == 200
    key = response.json()["token"]
    assert key == Token.objects.get(user=user).key
    assert as_token(key).get("/api/v1/batches/").status_code == 200
    again = anonymous.post(TOKEN_URL, {"username": user.username, "password": PASSWORD}, format="json")
    assert again.json()["token"] == key  # the same token, not a new one each time


def test_a_form_encoded_body_is_refused_as_the_rest_of_the_api_refuses_it(anonymous, user):
    response = anonymous.post(TOKEN_URL, {"username": user.username, "password": PASSWORD})

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


@pytest.mark.parametrize(
    "credentials",
    [
        {"username": "shopper-x", "password": "wrong"},
        {"username": "nobody-at-all", "password": PASSWORD},
    ],
    ids=["wrong password", "unknown user"],
)
def test_wrong_credentials_are_a_400_that_says_so(anonymous, db, credentials):
    UserFactory(username="shopper-x")

    response = anonymous.post(TOKEN_URL, credentials, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "detail": str(messages.WRONG_CREDENTIALS),
        "code": "invalid",
        "non_field_errors": [str(messages.WRONG_CREDENTIALS)],
    }
    assert not Token.objects.exists()


def test_a_disabled_account_gets_no_token(anonymous, db):
    UserFactory(username="gone", is_active=False)

    response = anonymous.post(TOKEN_URL, {"username": "gone", "password": PASSWORD}, format="json")

    assert response.status_code == 400
    assert not Token.objects.exists()


def test_missing_fields_are_named(anonymous, db):
    response = anonymous.post(TOKEN_URL, {}, format="json")

    assert response.status_code == 400
    assert {"username", "password"} <= set(response.json())
    assert response.json()["code"] == "invalid"


@pytest.mark.parametrize("username", ["demo\x00", "\ud800", "x" * 151, ["a"]], ids=["NUL", "surrogate", "long", "list"])
def test_unreadable_usernames_are_a_400_not_a_500(anonymous, db, username):
    body = '{"username": %s, "password": "x"}'

    response = anonymous.post(TOKEN_URL, body % json.dumps(username), content_type="application/json")

    assert response.status_code == 400
    assert "username" in response.json()


def test_a_session_cookie_is_not_needed_and_does_not_demand_csrf(user):
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(user)

    response = browser.post(TOKEN_URL, {"username": user.username, "password": PASSWORD}, format="json")

    assert response.status_code == 200


def test_attempts_are_throttled_per_address(anonymous, db):
    # Ten different names, so that no account is locked out: this is the throttle, not the lockout.
    answers = [
        anonymous.post(TOKEN_URL, {"username": f"guess{n}", "password": "x"}, format="json").status_code
        for n in range(11)
    ]

    assert answers == [400] * 10 + [429]
    throttled = anonymous.post(TOKEN_URL, {"username": "guess", "password": "x"}, format="json")
    assert int(throttled["Retry-After"]) > 0
    assert "throttled" in throttled.json()["detail"]


def test_a_revoked_token_no_longer_authenticates(anonymous, user):
    from accounts import services

    key = anonymous.post(TOKEN_URL, {"username": user.username, "password": PASSWORD}, format="json").json()["token"]

    services.api_token_revoke(user=user)

    assert as_token(key).get("/api/v1/batches/").status_code == 401


def test_a_rotated_token_replaces_the_old_one(anonymous, user):
    from accounts import services

    old = anonymous.post(TOKEN_URL, {"username": user.username, "password": PASSWORD}, format="json").json()["token"]

    new = services.api_token_rotate(user=user).key

    assert new != old
    assert as_token(old).get("/api/v1/batches/").status_code == 401
    assert as_token(new).get("/api/v1/batches/").status_code == 200
    again = anonymous.post(TOKEN_URL, {"username": user.username, "password": PASSWORD}, format="json")
    assert again.json()["token"] == new


def test_the_schema_documents_the_endpoint(anonymous, db):
    schema = anonymous.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    operation = schema["paths"]["/api/v1/auth/token/"]["post"]
    assert {"200", "400", "429"} <= set(operation["responses"])
    assert "Retry-After" in operation["responses"]["429"]["headers"]
    assert "security" not in operation  # no authentication needed, unlike every other operation
    assert "security" in schema["paths"]["/api/v1/batches/"]["post"]
    request = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(schema["components"]["schemas"][request]["required"]) == {"username", "password"}
