"""Configuration mistakes are reported in one line that names the variable; production settings pass
Django's deployment checklist."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "shop.example.com",
    "SANDBOX_WEBHOOK_SECRET": secrets.token_urlsafe(32),
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
}


def manage(*args, **env) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("DATABASE_", "REDIS_", "CELERY_", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE", "DJANGO_SETTINGS_MODULE")
        )
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_reports_nothing_under_production_variables():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION_ENV)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_missing_secret_key_with_debug_off_is_one_line_naming_it():
    env = {**PRODUCTION_ENV}
    del env["SECRET_KEY"]

    result = manage("check", **env)

    assert result.returncode != 0
    assert result.stderr.strip() == "configuration error: SECRET_KEY must be set when DEBUG is off"


def test_malformed_database_url_is_one_line_naming_it():
    result = manage("preflight", **{**PRODUCTION_ENV, "DATABASE_URL": "mysql-ish:/nowhere"})

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "DATABASE_URL" in result.stderr


def test_unreachable_database_is_one_line_naming_it():
    url = "postgres://postgres@127.0.0.1:1/batchpay"

    result = manage("preflight", **{**PRODUCTION_ENV, "DATABASE_URL": url})

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "DATABASE_URL: cannot use the database" in result.stderr


def test_unreachable_redis_is_one_line_naming_it():
    result = manage("preflight", **{**PRODUCTION_ENV, "REDIS_URL": "redis://127.0.0.1:1/0"})

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "REDIS_URL: cannot reach redis://127.0.0.1:1/0" in result.stderr


def test_unreachable_rabbitmq_is_one_line_naming_it_without_its_password():
    url = "amqp://shop:s3cret@127.0.0.1:1/batchpay"

    result = manage("preflight", **{**PRODUCTION_ENV, "CELERY_BROKER_URL": url})

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "CELERY_BROKER_URL: cannot reach amqp://shop:***@127.0.0.1:1/batchpay" in result.stderr
    assert "s3cret" not in result.stderr


def test_with_rabbitmq_as_broker_an_unreachable_result_backend_is_one_line_naming_it(rabbitmq_url):
    env = {**PRODUCTION_ENV, "CELERY_BROKER_URL": rabbitmq_url, "REDIS_URL": "redis://127.0.0.1:1/0"}

    result = manage("preflight", **env)

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "REDIS_URL: cannot reach redis://127.0.0.1:1/0" in result.stderr
    assert "CELERY_BROKER_URL" not in result.stderr  # the broker itself answered


def email_settings(**env) -> dict:
    code = (
        "import json; from django.conf import settings as s; print(json.dumps({k: getattr(s, k, None) for k in "
        "['EMAIL_BACKEND', 'EMAIL_HOST', 'EMAIL_PORT', 'EMAIL_HOST_USER', 'EMAIL_HOST_PASSWORD', 'EMAIL_USE_TLS', "
        "'DEFAULT_FROM_EMAIL']}))"
    )
    result = manage("shell", "-c", code, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_development_mail_goes_to_the_console():
    mail = email_settings(DEBUG="1")

    assert mail["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"


def test_production_mail_goes_through_the_smtp_server_of_email_url():
    env = {
        **PRODUCTION_ENV,
        "EMAIL_URL": "smtp+tls://shop%40example.com:s3cret@smtp.example.com:587",
        "DEFAULT_FROM_EMAIL": "Batchpay <receipts@example.com>",
    }

    mail = email_settings(**env)

    assert mail == {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "smtp.example.com",
        "EMAIL_PORT": 587,
        "EMAIL_HOST_USER": "shop@example.com",
        "EMAIL_HOST_PASSWORD": "s3cret",
        "EMAIL_USE_TLS": True,
        "DEFAULT_FROM_EMAIL": "Batchpay <receipts@example.com>",
    }


def test_a_malformed_email_url_is_one_line_naming_it():
    result = manage("check", **{**PRODUCTION_ENV, "EMAIL_URL": "carrier-pigeon://coop"})

    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "EMAIL_URL is not a valid e-mail URL" in result.stderr
