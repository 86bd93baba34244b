def test_healthz_is_200_when_database_broker_and_worker_are_up(client, worker):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "up", "broker": "up", "worker": "up"}


def test_healthz_is_503_naming_the_worker_when_none_answers(client, worker, celery_on, redis_url):
    # given: a Redis database no worker listens on
    celery_on(redis_url.rsplit("/", 1)[0] + "/9")

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
