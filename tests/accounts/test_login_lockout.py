"""Repeated failed logins on the website are slowed, then locked out, per account and address (django-axes)."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts import messages
from tests.factories import UserFactory

LOGIN = "/accounts/login/"
PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's


@pytest.fixture
def victim(db):
    return UserFactory(username="victim")


@pytest.fixture
def no_slowing(settings):
    """Only the lockout, for tests about it: the waits before it are tested on their own."""
    settings.LOGIN_SLOW_AFTER = 1000


def log_in(client, username="victim", password=PASSWORD, address="203.0.113.7", **headers):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address, **headers)


def logged_in(response) -> bool:
    return response.status_code == 302 and response["Location"] == "/"


def time_passes(seconds):
    """Move every recorded failure into the past, as if the clock had moved on."""
    for attempt in AccessAttempt.objects.all():
        attempt.attempt_time -= timedelta(seconds=seconds)
        attempt.save(update_fields=["attempt_time"])


def test_a_mistyped_password_or_two_changes_nothing(client, victim):
    for _ in range(2):
        assert log_in(client, password="wrong").status_code == 200

    assert logged_in(log_in(client))


def test_after_three_failures_the_next_password_is_checked_only_after_a_wait(client, victim, settings):
    for _ in range(settings.LOGIN_SLOW_AFTER):
        log_in(client, password="wrong")

    refused = log_in(client)  # even the right password: it is not checked yet

    assert refused.status_code == 200
    assert str(messages.LOGIN_SLOWED % {"seconds": 2}) in refused.content.decode()
    assert "_auth_user_id" not in client.session
    time_passes(2)
    assert logged_in(log_in(client))
    assert not AccessAttempt.objects.exists()  # a success forgets the failures


def test_the_wait_doubles_with_each_failure(client, victim, settings):
    for _ in range(settings.LOGIN_SLOW_AFTER):
        log_in(client, password="wrong")
    time_passes(2)
    log_in(client, password="wrong")  # a fourth failure

    page = log_in(client).content.decode()

    assert str(messages.LOGIN_SLOWED % {"seconds": 4}) in page


def test_after_ten_failures_the_account_is_locked_for_that_address_even_with_the_right_password(
    client, victim, no_slowing, settings
):
    answers = [log_in(client, password=f"wrong{n}").status_code for n in range(settings.LOGIN_FAILURE_LIMIT)]

    locked = log_in(client)

    assert answers == [200] * (settings.LOGIN_FAILURE_LIMIT - 1) + [429]
    assert locked.status_code == 429
    html = locked.content.decode()
    assert f'<p class="error" id="locked-out" role="alert">{messages.LOCKED_OUT % {"minutes": 15}}</p>' in html
    assert 'name="username"' in html  # still the login page, with the reason on it
    assert int(locked["Retry-After"]) == 15 * 60
    assert "_auth_user_id" not in client.session


def test_the_lockout_is_per_account_and_address(client, victim, no_slowing, settings):
    UserFactory(username="neighbour")
    for n in range(settings.LOGIN_FAILURE_LIMIT):
        log_in(client, password=f"wrong{n}")

    assert logged_in(log_in(client, address="198.51.100.1"))  # the owner, from elsewhere
    client.logout()
    assert logged_in(log_in(client, username="neighbour"))  # someone else, from the same address


def test_the_lockout_ends_after_its_time(client, victim, no_slowing, settings):
    for n in range(settings.LOGIN_FAILURE_LIMIT):
        log_in(client, password=f"wrong{n}")

    time_passes(15 * 60 + 1)

    assert logged_in(log_in(client))


def test_the_lockout_message_is_translated(client, victim, no_slowing, settings):
    for n in range(settings.LOGIN_FAILURE_LIMIT):
        log_in(client, password=f"wrong{n}")

    page = log_in(client, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()

    assert "登录失败次数过多" in page


def test_the_slowing_message_is_translated(client, victim, settings):
    for _ in range(settings.LOGIN_SLOW_AFTER):
        log_in(client, password="wrong")

    page = log_in(client, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()

    assert "请等待 2 秒" in page


def test_failures_through_the_api_count_towards_the_same_lockout(client, victim, no_slowing, settings):
    cache.clear()  # the token endpoint's throttle
    api = APIClient(REMOTE_ADDR="203.0.113.7")
    answers = [
        api.post("/api/v1/auth/token/", {"username": "victim", "password": f"wrong{n}"}, format="json")
        for n in range(settings.LOGIN_FAILURE_LIMIT)
    ]
    cache.clear()

    assert [answer.status_code for answer in answers][-2:] == [400, 429]
    assert answers[-1].json() == {"detail": str(messages.LOCKED_OUT % {"minutes": 15})}
    assert (
        api.post("/api/v1/auth/token/", {"username": "victim", "password": PASSWORD}, format="json").status_code == 429
    )
    assert log_in(client).status_code == 429
