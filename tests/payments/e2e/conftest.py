"""Fixtures of the rails' end-to-end tests: the site over real HTTP (pytest-django's live server, where the
fakes POST their notifications: SITE_URL points at it) and a real worker of the test's own, started with the
rails' settings in its environment, on a broker this process is pointed at."""

from collections.abc import Iterator
from typing import Any

import pytest

from tests.payments.fakes.wechat import FakeWeChatPay, wechat_pay_fake


@pytest.fixture
def rail_site(live_server, start_worker, private_redis, celery_on):
    """`rail_site(**environment)`: start a worker with these settings (the fakes' `environment()`/`environ()`)
    and send this process's tasks to it; returns the live server."""

    def start(**environment: str) -> Any:
        broker = private_redis()
        start_worker(broker, "rail-worker", **environment)
        celery_on(broker)
        return live_server

    return start


@pytest.fixture
def fake_wechat(settings) -> Iterator[FakeWeChatPay]:
    """A fake WeChat Pay of the test's own, with this process's settings pointed at it."""
    with wechat_pay_fake(settings) as fake:
        yield fake


@pytest.fixture
def staff_api():
    from rest_framework.test import APIClient

    from tests.factories import UserFactory

    client = APIClient()
    client.force_authenticate(UserFactory(is_staff=True))
    return client
