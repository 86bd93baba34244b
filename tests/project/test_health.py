import pytest


@pytest.mark.every_broker
def test_healthz_is_200_when_database_broker_and_worker_are_up(client, worker, broker):
    response = client.get("/healthz")

    assert response.status_code == 200
    expected = {"database": "up", "broker": "up", "worker": "up"}
    if broker.kind == "rabbitmq":  # the results' Redis is then a service of its own, checked on its own
        expected["results"] = "up"
    assert response.json()["checks"] == expected


def test_healthz_is_503_naming_the_worker_when_none_answers(client, worker, celery_on, redis_url):
    # given: a Redis database no worker listens on
    unwatched = redis_url.rsplit("/", 1)[0] + "/9"
    celery_on(unwatched, result_backend=unwatched)

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "up", "broker": "up", "worker": "down"}
    assert "no worker answered" in response.json()["problems"]["worker"]


def test_healthz_is_503_naming_the_broker_variable_when_redis_is_unreachable(client, db, celery_on):
    celery_on("redis://127.0.0.1:1/0")

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["broker"] == "down"
    assert body["problems"]["broker"].startswith("REDIS_URL: cannot reach redis://127.0.0.1:1/0")


def test_healthz_is_503_naming_the_result_backend_when_its_redis_is_unreachable(client, db, celery_on, redis_url):
    # given: the broker answers, the Redis that chords count their results in does not
    celery_on(redis_url, result_backend="redis://127.0.0.1:1/0")

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert (body["checks"]["broker"], body["checks"]["results"]) == ("up", "down")
    assert body["problems"]["results"].startswith("REDIS_URL: cannot reach redis://127.0.0.1:1/0")
