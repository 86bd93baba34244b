"""No task is held by a broker longer than it can hold one: RabbitMQ makes a worker exit when it holds a delivery
past consumer_timeout (30 min by default), Redis hands it to a second worker after its visibility timeout. A
countdown beyond TASK_LONGEST_COUNTDOWN_SECONDS is shortened to it, whoever asks for it (a retry, the outbox)."""

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from kombu import Connection

from config.celery import app as celery_app


def queued_eta(broker_url: str, queue: str) -> datetime:
    with Connection(broker_url) as connection:
        message = connection.SimpleQueue(queue).get(timeout=5)
        message.ack()
    return datetime.fromisoformat(message.headers["eta"])


def test_an_hour_long_countdown_is_held_by_the_broker_for_ten_minutes_at_most(db, private_redis, celery_on):
    broker = private_redis()  # no worker consumes from it: the message stays where the test can read it
    celery_on(broker, result_backend=broker)
    task = celery_app.tasks["orders.tasks.send_receipt"]

    before = timezone.now()
    task.apply_async(("a-batch", "paid"), countdown=3600, ignore_result=True)

    eta = queued_eta(broker, "default")
    longest = timedelta(seconds=settings.TASK_LONGEST_COUNTDOWN_SECONDS)
    assert before + longest - timedelta(seconds=5) <= eta <= timezone.now() + longest


def test_a_countdown_within_the_limit_is_kept(db, private_redis, celery_on):
    broker = private_redis()
    celery_on(broker, result_backend=broker)
    task = celery_app.tasks["orders.tasks.recover_stuck_batches"]

    before = timezone.now()
    task.apply_async(countdown=31, ignore_result=True)

    eta = queued_eta(broker, "placing")
    assert before + timedelta(seconds=31) <= eta <= timezone.now() + timedelta(seconds=31)
