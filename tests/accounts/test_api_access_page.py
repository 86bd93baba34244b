"""The "API access" page: create a token, see it once, rotate and revoke it, with plain forms."""

import re

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts import messages

PAGE = "/accounts/api-access/"
SHOWN_KEY = re.compile(r'<code class="token-key" id="token-key">(\w+)</code>')


@pytest.fixture
def account(client, user):
    client.force_login(user)
    return client


def post(client, action):
    return client.post(PAGE, {"action": action}, follow=True)


def works(key: str) -> bool:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return api.get("/api/v1/batches/").status_code == 200


def test_the_account_menu_leads_to_the_page(account):
    home = account.get("/checkout/").content.decode()

    assert f'href="{PAGE}"' in home
    page = account.get(PAGE)
    assert page.status_code == 200
    assert "You have no API token." in page.content.decode()
    assert page["Cache-Control"].startswith("max-age=0")


def test_anonymous_visitors_are_sent_to_log_in(client, db):
    assert client.get(PAGE)["Location"].startswith("/accounts/login/")


def test_a_created_token_is_shown_once_and_works(account, user):
    page = post(account, "create")

    html = page.content.decode()
    key = SHOWN_KEY.search(html).group(1)
    assert key == Token.objects.get(user=user).key
    assert str(messages.TOKEN_CREATED) in html
    assert works(key)
    later = account.get(PAGE).content.decode()
    assert key not in later
    assert f"ending in …{key[-4:]}" in later


def test_reloading_after_creating_does_not_create_another(account, user):
    first = SHOWN_KEY.search(post(account, "create").content.decode()).group(1)

    again = post(account, "create").content.decode()

    assert str(messages.TOKEN_ALREADY_EXISTS) in again
    assert not SHOWN_KEY.search(again)
    assert Token.objects.get(user=user).key == first


def test_rotating_replaces_the_old_token(account, user):
    old = SHOWN_KEY.search(post(account, "create").content.decode()).group(1)

    page = post(account, "rotate").content.decode()

    new = SHOWN_KEY.search(page).group(1)
    assert new != old
    assert str(messages.TOKEN_ROTATED) in page
    assert not works(old)
    assert works(new)


def test_a_revoked_token_no_longer_authenticates(account, user):
    key = SHOWN_KEY.search(post(account, "create").content.decode()).group(1)

    page = post(account, "revoke").content.decode()

    assert str(messages.TOKEN_REVOKED) in page
    assert "You have no API token." in page
    assert not Token.objects.filter(user=user).exists()
    assert not works(key)


def test_the_forms_need_the_csrf_token(user):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)

    assert browser.post(PAGE, {"action": "create"}).status_code == 403
    assert not Token.objects.exists()

    page = browser.get(PAGE).content.decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="(\w+)"', page).group(1)
    assert browser.post(PAGE, {"action": "create", "csrfmiddlewaretoken": csrf}).status_code == 302
    assert Token.objects.filter(user=user).exists()


def test_an_unknown_action_changes_nothing(account, user):
    Token.objects.create(user=user)
    key = Token.objects.get(user=user).key

    assert account.post(PAGE, {"action": "delete-everything"}).status_code == 302
    assert Token.objects.get(user=user).key == key


def test_the_page_speaks_chinese(account):
    page = account.get(PAGE, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()

    assert "API 访问" in page
    assert "您还没有 API 令牌。" in page
    created = account.post(PAGE, {"action": "create"}, follow=True, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "请现在复制" in created
