import pytest

from config.celery import app as celery_app


@pytest.fixture
def broker_url(redis_url):
    """Point the web side at another broker for one test, then back."""
    original = celery_app.conf.broker_url

    def point_at(url):
        celery_app.conf.broker_url = url
        # The app caches the connection pool of the old URL; dropping it makes the next use look up the
        # pool for the new one (kombu keeps one per URL, so the original comes back intact).
        celery_app._pool = None

    yield point_at
    point_at(original)


def test_healthz_is_200_when_database_broker_and_worker_are_up(client, worker):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "up", "broker": "up", "worker": "up"}


def test_healthz_is_503_naming_the_worker_when_none_answers(client, worker, broker_url, redis_url):
    # given: a Redis database no worker listens on
    broker_url(redis_url.rsplit("/", 1)[0] + "/9")

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "up", "broker": "up", "worker": "down"}
    assert "no worker answered" in response.json()["problems"]["worker"]


def test_healthz_is_503_naming_the_broker_variable_when_redis_is_unreachable(client, db, broker_url):
    broker_url("redis://127.0.0.1:1/0")

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["broker"] == "down"
    assert body["problems"]["broker"].startswith("REDIS_URL: cannot reach redis://127.0.0.1:1/0")
