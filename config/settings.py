"""Batchpay settings: one module, every deployment difference comes from the environment.

Variables (see README "Configuration"): DEBUG, SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL, REDIS_URL,
CELERY_BROKER_URL, CELERY_RESULT_BACKEND, CELERY_TASK_ALWAYS_EAGER, SANDBOX_WEBHOOK_SECRET, BATCH_MAX_ROWS,
PAYMENT_EXPIRY_MINUTES, BATCH_PLACING_TIMEOUT_SECONDS, BATCH_MAX_DISPATCHES, PLACING_ASYNCHRONOUS_COMMIT, EMAIL_URL,
DEFAULT_FROM_EMAIL, API_THROTTLE_TOKEN, LOGIN_FAILURE_LIMIT, LOGIN_LOCKOUT_MINUTES, LOGIN_SLOW_AFTER,
LOGIN_SLOW_SECONDS, CAPTCHA_TIMEOUT_MINUTES, CAPTCHA_FLITE_PATH, WECHATPAY_* and ALIPAY_* (below). Secrets have no
default unless DEBUG is on.
"""

import shutil
import warnings
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

# ------------------------------------------------------------------------------------------------
# Core
# https://docs.djangoproject.com/en/5.2/ref/settings/#core-settings
# ------------------------------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)


def _secret(name: str, debug_default: str) -> str:
    """A secret may only fall back to a default in development."""
    value = env.str(name, default="")
    if value:
        return value
    if DEBUG:
        return debug_default
    raise ImproperlyConfigured(f"{name} must be set when DEBUG is off")


SECRET_KEY = _secret("SECRET_KEY", "dev-only-secret-key-not-for-production-0123456789abcdefghij")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "axes",
    "captcha",
    "config.apps.ProjectConfig",
    "accounts",
    "orders",
    "payments",
    "payments.sandbox.apps.SandboxGatewayConfig",
    "recharge",
]

MIDDLEWARE = [
    # First: every error answer on /api/ and /payments/webhooks/ is JSON in one shape (config/errors.py).
    "config.errors.MachineErrorsMiddleware",
    "config.errors.EdgeRefusalMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a login refused for repeated failures into the lockout answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# ------------------------------------------------------------------------------------------------
# Database
# https://docs.djangoproject.com/en/5.2/ref/settings/#databases
# ------------------------------------------------------------------------------------------------
_SUPPORTED_DB_ENGINES = {"django.db.backends.postgresql", "django.db.backends.sqlite3"}


def _database_from_url(url: str) -> dict:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # environ warns about unknown schemes; we raise below instead
            config = env.db_url_config(url)
    except Exception as exc:  # noqa: BLE001 - environ raises several types for a malformed URL
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL ({exc})") from None
    if config.get("ENGINE") not in _SUPPORTED_DB_ENGINES or not config.get("NAME"):
        raise ImproperlyConfigured(
            f"DATABASE_URL must be postgres://user@host:port/name or sqlite:///path, got {url!r}"
        )
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # The embedded default is shared by the web process and the worker: WAL lets readers go on
        # while a writer works, IMMEDIATE takes the write lock up front instead of failing mid-way.
        config["OPTIONS"] = {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    else:
        config["CONN_HEALTH_CHECKS"] = True
        config["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    return config


DATABASES = {"default": _database_from_url(env.str("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"))}

# ------------------------------------------------------------------------------------------------
# Auth, i18n, static files
# ------------------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
# django-axes first: it refuses a locked-out account and address before any password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]


LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Where collectstatic writes and whitenoise serves from; a load run collects into a folder of its own.
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}


# ------------------------------------------------------------------------------------------------
# E-mail: the console in development, SMTP from EMAIL_URL in production
# https://django-environ.readthedocs.io/en/latest/types.html#environ-env-email-url
# e.g. EMAIL_URL=smtp+tls://user:password@smtp.example.com:587 (smtp+ssl:// for port 465)
# ------------------------------------------------------------------------------------------------
def _email_from_url(url: str) -> dict:
    try:
        config = env.email_url_config(url)
    except ImproperlyConfigured as exc:
        raise ImproperlyConfigured(f"EMAIL_URL is not a valid e-mail URL ({exc})") from None
    return {key: value for key, value in config.items() if value not in (None, "")}


globals().update(_email_from_url(env.str("EMAIL_URL", default="consolemail://" if DEBUG else "smtp://localhost:25")))
# A slow mail server must not hold a worker for minutes.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Batchpay <noreply@localhost>")
SERVER_EMAIL = env.str("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)

# ------------------------------------------------------------------------------------------------
# Logging in: repeated failures are slowed, then locked out per account and address (accounts/lockout.py)
# https://django-axes.readthedocs.io/en/latest/4_configuration.html
# ------------------------------------------------------------------------------------------------
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
LOGIN_LOCKOUT_MINUTES = env.int("LOGIN_LOCKOUT_MINUTES", default=15)
# From this many failures on, each further password is checked only after a wait that doubles each time.
LOGIN_SLOW_AFTER = env.int("LOGIN_SLOW_AFTER", default=3)
LOGIN_SLOW_SECONDS = env.int("LOGIN_SLOW_SECONDS", default=2)
LOGIN_SLOW_MAX_SECONDS = 60
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_LOCKOUT_MINUTES)
# The pair, not each alone: someone guessing from elsewhere cannot lock a customer out of their account.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.lockout.locked_out_response"
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False  # no banner on every command: configuration errors must stay one line
# The address is REMOTE_ADDR: behind a proxy every client has the proxy's, so the lockout is then per
# account (see README, "Configuration").

# ------------------------------------------------------------------------------------------------
# The checkout's captcha (django-simple-captcha): a picture, a new one on request, and a spoken version
# https://django-simple-captcha.readthedocs.io/en/latest/advanced.html
# ------------------------------------------------------------------------------------------------
# Long enough to fill in a large order form before answering.
CAPTCHA_TIMEOUT = env.int("CAPTCHA_TIMEOUT_MINUTES", default=30)
# The spoken version needs the flite speech synthesiser (Debian: apt-get install flite); without it the
# checkout offers the picture alone.
CAPTCHA_FLITE_PATH = env.str("CAPTCHA_FLITE_PATH", default=shutil.which("flite") or "") or None

# ------------------------------------------------------------------------------------------------
# Security (production values unless DEBUG; each can be overridden, e.g. behind a TLS proxy)
# https://docs.djangoproject.com/en/5.2/howto/deployment/checklist/
# ------------------------------------------------------------------------------------------------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
if env.bool("USE_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# /healthz is probed over plain HTTP by load balancers and process managers.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# ------------------------------------------------------------------------------------------------
# Django REST framework and the OpenAPI schema
# https://www.django-rest-framework.org/api-guide/settings/
# ------------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "config.api.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON only, with bounded depth, size and numbers (config/json_input.py); form bodies answer 415.
    "DEFAULT_PARSER_CLASSES": ["config.json_input.BoundedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["config.api.JSONRenderer", "rest_framework.renderers.BrowsableAPIRenderer"],
    "DEFAULT_PAGINATION_CLASS": "config.api.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "config.openapi.AutoSchema",
    # Counted in the shared cache below, so every web process enforces one limit (config/throttling.py).
    "DEFAULT_THROTTLE_CLASSES": ["config.throttling.UserThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": env.str("API_THROTTLE_USER", default="600/minute"),
        # POST /api/v1/batches/ and retry-failed: each may place up to BATCH_MAX_ROWS orders.
        "batches": env.str("API_THROTTLE_BATCHES", default="30/minute"),
        # The checkout calls the number lookup as the user types: generous, but not a free lookup service.
        "lookup": env.str("API_THROTTLE_LOOKUP", default="120/minute"),
        # POST /api/v1/auth/token/, per client address: a password guesser gets few tries.
        "token": env.str("API_THROTTLE_TOKEN", default="10/minute"),
    },
    "EXCEPTION_HANDLER": "config.errors.api_exception_handler",
    # Proxies in front of the site that append to X-Forwarded-For; 0 counts clients by their own address, so
    # that a made-up X-Forwarded-For header cannot dodge a per-address limit.
    "NUM_PROXIES": env.int("API_NUM_PROXIES", default=0),
}
# Bodies nested deeper than this are refused before parsing (rows and notifications need 4 levels).
JSON_MAX_DEPTH = 32
CSRF_FAILURE_VIEW = "config.errors.csrf_failure"
SPECTACULAR_SETTINGS = {
    "TITLE": "Batchpay API",
    "DESCRIPTION": "Place many orders at once and pay for them with one merged payment.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # 3.1 (JSON Schema 2020-12): a row field may be "a string or an integer", as the row checks accept.
    "OAS_VERSION": "3.1.0",
    # Served from our own static files: the docs page must not fetch assets from outside the site.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "BatchStatusEnum": "orders.models.Batch.Status",
        "OrderStatusEnum": "orders.models.Order.Status",
        "BatchRowOutcomeEnum": "orders.models.BatchRow.Outcome",
        "PaymentStatusEnum": "payments.models.Payment.Status",
        "PaymentAttemptStatusEnum": "payments.models.PaymentAttempt.Status",
    },
}

# ------------------------------------------------------------------------------------------------
# Celery
# https://docs.celeryq.dev/en/stable/userguide/configuration.html
# ------------------------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
# The broker is Redis or RabbitMQ (amqp://user:password@host:5672/vhost); the result backend stays a Redis either
# way: chords count their results in it (README "Running with RabbitMQ").
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL)
# Which variable an operator should look at when the broker or the result backend cannot be reached.
CELERY_BROKER_URL_VARIABLE = "CELERY_BROKER_URL" if env.str("CELERY_BROKER_URL", default="") else "REDIS_URL"
CELERY_RESULT_BACKEND_VARIABLE = (
    "CELERY_RESULT_BACKEND" if env.str("CELERY_RESULT_BACKEND", default="") else "REDIS_URL"
)
BROKER_IS_RABBITMQ = CELERY_BROKER_URL.startswith(("amqp://", "amqps://", "pyamqp://"))
# The cache that throttling counts in: one Redis for every web process, so that a limit holds across them.
# Without Redis (the embedded default running Celery eagerly) each process counts for itself.
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
        if env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
        else {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": env.str("CACHE_URL", default=REDIS_URL),
            "KEY_PREFIX": "batchpay",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    )
}
# Only for the embedded default without any Redis: tasks run inside the web process.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True

# Money moves through these tasks: a task is acknowledged only after it ran, and a task whose
# worker died is redelivered instead of dropped. Every task is idempotent to make that safe.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# One task at a time per pool process: a killed worker holds back no more than the tasks it was running. Measured
# (docs/performance.md, 30 November 2026): a multiplier of 4 or 16 and early acks placed no closer to Celery's
# floor; the threads pool spent less CPU per task on placing and on the floor alike, but it has no time limits
# (below), so the pool stays prefork. What helped is more processes than cores (the README's worker command).
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int("CELERY_WORKER_PREFETCH_MULTIPLIER", default=1)
# Celery's Django fixup closes the database connection around every task unless told to reuse it;
# config/celery.py replaces a broken or old one instead (see docs/performance.md for the cost).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=10_000)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SOFT_TIME_LIMIT = 120
CELERY_TASK_TIME_LIMIT = 180
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A web request must not hang on a dead broker: the batch is already in the database and the
# recovery job re-drives it, so publishing gives up after a few quick tries.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 3, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
# A task with a countdown is held, unacknowledged, by the worker that received it until it is due. No broker
# lets that last: Redis gives the task to another worker after visibility_timeout (below), and RabbitMQ closes
# the channel of a consumer that holds a delivery longer than its consumer_timeout (30 min by default; the
# worker then exits). So no task waits longer than this in the broker: config/celery.py shortens a longer
# countdown to it. Top-up retries and gateway notification backoff wait up to 600 s.
TASK_LONGEST_COUNTDOWN_SECONDS = 600
# On RabbitMQ: connecting, AMQP handshake included, gives up after 1 s, as on Redis (socket_connect_timeout), so
# that /healthz answers within 2 s when the broker is down. Redis ignores this setting.
CELERY_BROKER_CONNECTION_TIMEOUT = 1
# Transport options differ by broker; CELERY_BROKER_TRANSPORT_OPTIONS is the one for CELERY_BROKER_URL.
RABBITMQ_TRANSPORT_OPTIONS = {
    # A publish that finds the broker down fails at once, as on Redis (the outbox is the retry); kombu would
    # otherwise wait 2 s before giving up on a refused connection. A publish given a retry policy (the chords a
    # worker builds) still retries. The unacknowledged tasks of a worker that died return to their queue as soon
    # as its connection closes; a dead connection is found by AMQP heartbeats (Celery's default, 120 s).
    "max_retries": 0,
}
REDIS_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": 1,
    "socket_timeout": 10,
    # Redis gives an unacknowledged task to another worker after this long. It must outlast the longest
    # countdown (TASK_LONGEST_COUNTDOWN_SECONDS) plus a task's run time (CELERY_TASK_TIME_LIMIT), or the task
    # would run twice; recovering from a killed worker does not wait for it (see BATCH_PLACING_TIMEOUT_SECONDS).
    "visibility_timeout": 900,
}
CELERY_BROKER_TRANSPORT_OPTIONS = RABBITMQ_TRANSPORT_OPTIONS if BROKER_IS_RABBITMQ else REDIS_TRANSPORT_OPTIONS
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"socket_connect_timeout": 3}
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = [Queue(name) for name in ("default", "placing", "payments", "fulfilment")]
CELERY_TASK_ROUTES = {
    # Not behind a long placing backlog: it is what gets work moving again after an outage.
    "orders.tasks.publish_outbox": {"queue": "default"},
    "orders.tasks.send_receipt": {"queue": "default"},
    "orders.tasks.*": {"queue": "placing"},
    "payments.tasks.*": {"queue": "payments"},
    "payments.sandbox.tasks.*": {"queue": "payments"},
    "recharge.tasks.*": {"queue": "fulfilment"},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    # One indexed query; every 5 s so that a batch whose worker died is re-driven at most 5 s after it
    # counts as stuck (drill 1: a killed worker costs ~50 s of a 1,000-row batch, the bound is 60 s).
    "recover-stuck-batches": {
        "task": "orders.tasks.recover_stuck_batches",
        "schedule": 5.0,
        "options": {"expires": 4},
    },
    "publish-outbox": {
        "task": "orders.tasks.publish_outbox",
        "schedule": 2.0,
        "options": {"expires": 2},
    },
    "reconcile-pending-payments": {
        "task": "payments.tasks.reconcile_pending_payments",
        "schedule": 120.0,
        "options": {"expires": 110},
    },
    "redrive-fulfilments": {
        "task": "recharge.tasks.redrive_fulfilments",
        "schedule": 15.0,
        "options": {"expires": 14},
    },
    "request-unanswered-refunds": {
        "task": "payments.tasks.request_unanswered_refunds",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "expire-unpaid-payments": {
        "task": "payments.tasks.expire_unpaid_payments",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # The rails' bills of day D exist the next morning (WeChat Pay's after 10:00 Asia/Shanghai, Alipay's
    # earlier): hourly from 10:30 to 23:30 there (beat's clock is TIME_ZONE, which Celery takes from Django).
    # A run reconciles only the days still due, so all but the first of a day ask no rail.
    "reconcile-statements": {
        "task": "payments.tasks.reconcile_statements",
        "schedule": crontab(minute="30", hour="10-23"),
        "options": {"expires": 3000},
    },
}

# ------------------------------------------------------------------------------------------------
# Batchpay
# ------------------------------------------------------------------------------------------------
SHOP_CURRENCY = "CNY"
BATCH_MAX_ROWS = env.int("BATCH_MAX_ROWS", default=5000)
# The checkout posts every row's inputs at once: its kind and reference and the inputs of every order
# type on offer (9 with goods, mobile and game); 16 a row leaves room for more types (check orders.W001).
DATA_UPLOAD_MAX_NUMBER_FIELDS = BATCH_MAX_ROWS * 16 + 100
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# A placing batch none of whose rows settled for this long lost its tasks (a killed worker, a broker
# restart) and is re-driven: a batch that is moving is never touched, however large.
BATCH_PLACING_TIMEOUT_SECONDS = env.int("BATCH_PLACING_TIMEOUT_SECONDS", default=30)
# After this many dispatches, rows that still have no outcome are recorded as failures.
BATCH_MAX_DISPATCHES = env.int("BATCH_MAX_DISPATCHES", default=3)
# A row placed in one statement commits without waiting for its WAL to reach the disk (PostgreSQL's asynchronous
# commit, for that statement alone). A database crash may lose the last rows placed, never a payment for them:
# the payment's commit waits for the WAL up to itself, and so for every row placed before it; a row lost comes
# back as pending, and the callback and recovery place it again. docs/performance.md, "asynchronous commit".
PLACING_ASYNCHRONOUS_COMMIT = env.bool("PLACING_ASYNCHRONOUS_COMMIT", default=True)
PAYMENT_EXPIRY_MINUTES = env.int("PAYMENT_EXPIRY_MINUTES", default=30)
# Order refunds of one payment that fall due within this many seconds go to its rail as one refund request,
# and one payment's requests are at least this far apart (WeChat Pay wants a minute): docs/payments.md,
# "Refund grouping and its limits".
PAYMENT_REFUND_GROUPING_SECONDS = env.float("PAYMENT_REFUND_GROUPING_SECONDS", default=60.0)
# On a rail with a limit, the last request a payment has left waits this long for the refunds still to come.
PAYMENT_REFUND_LAST_REQUEST_WAIT_HOURS = env.float("PAYMENT_REFUND_LAST_REQUEST_WAIT_HOURS", default=72.0)
# Where people and gateways reach this site; gateways are given URLs under it to call back.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
# A payment still pending after this long is checked with the gateway, in case a notification was lost.
PAYMENT_RECONCILE_AFTER_MINUTES = env.int("PAYMENT_RECONCILE_AFTER_MINUTES", default=5)
# How far back the daily job looks for a rail's bill it could not reconcile yet (docs/payments.md,
# "Reconciliation").
PAYMENT_STATEMENT_LOOKBACK_DAYS = env.int("PAYMENT_STATEMENT_LOOKBACK_DAYS", default=7)
SANDBOX_WEBHOOK_SECRET = _secret("SANDBOX_WEBHOOK_SECRET", "dev-only-sandbox-webhook-secret")
RECHARGE_UPSTREAM = env.str("RECHARGE_UPSTREAM", default="sandbox")
RECHARGE_MAX_ATTEMPTS = env.int("RECHARGE_MAX_ATTEMPTS", default=3)
RECHARGE_RETRY_BASE_SECONDS = env.float("RECHARGE_RETRY_BASE_SECONDS", default=10.0)
RECHARGE_QUERY_DELAY_SECONDS = env.float("RECHARGE_QUERY_DELAY_SECONDS", default=30.0)
# A fulfilment whose next step is this overdue lost its task (a killed worker, a broker restart) and is
# re-driven; an attempt "in progress" this long died with its worker. An upstream call must time out sooner.
RECHARGE_REDRIVE_AFTER_SECONDS = env.float("RECHARGE_REDRIVE_AFTER_SECONDS", default=60.0)
RECHARGE_FACE_VALUES = [
    Decimal(v) for v in env.list("RECHARGE_FACE_VALUES", default=["10", "20", "30", "50", "100", "200", "300", "500"])
]

# ------------------------------------------------------------------------------------------------
# WeChat Pay (API v3): payments/rails/wechat.py; how to go live in docs/payments.md, "WeChat Pay"
# https://pay.weixin.qq.com/docs/merchant/ (the merchant API v3 documentation)
# The rail is offered only once every credential is set; keys are PEM text or the path of a PEM file.
# ------------------------------------------------------------------------------------------------
WECHATPAY_MCHID = env.str("WECHATPAY_MCHID", default="")
WECHATPAY_APPID = env.str("WECHATPAY_APPID", default="")
# The merchant API certificate's private key (apiclient_key.pem) and that certificate's serial number.
WECHATPAY_PRIVATE_KEY = env.str("WECHATPAY_PRIVATE_KEY", default="")
WECHATPAY_CERT_SERIAL_NO = env.str("WECHATPAY_CERT_SERIAL_NO", default="")
WECHATPAY_APIV3_KEY = env.str("WECHATPAY_APIV3_KEY", default="")
# WeChat Pay's public key and its id (PUB_KEY_ID_…); without them the platform certificates are downloaded
# into WECHATPAY_CERT_DIR and used instead.
WECHATPAY_PUBLIC_KEY = env.str("WECHATPAY_PUBLIC_KEY", default="")
WECHATPAY_PUBLIC_KEY_ID = env.str("WECHATPAY_PUBLIC_KEY_ID", default="")
WECHATPAY_CERT_DIR = env.str("WECHATPAY_CERT_DIR", default=str(VAR_DIR / "wechatpay-certificates"))
WECHATPAY_API_BASE = env.str("WECHATPAY_API_BASE", default="https://api.mch.weixin.qq.com").rstrip("/")

# ------------------------------------------------------------------------------------------------
# Alipay (payments/rails/alipay.py): going live is in docs/payments.md, "Alipay"
# ------------------------------------------------------------------------------------------------
# Unset means the rail is not offered (`manage.py preflight` names what is missing). Keys are PEM text (newlines
# may be written as \n), a path to a PEM file, or the bare base64 that Alipay's key tool shows.
ALIPAY_APP_ID = env.str("ALIPAY_APP_ID", default="")
ALIPAY_APP_PRIVATE_KEY = env.str("ALIPAY_APP_PRIVATE_KEY", default="", multiline=True)
# Alipay's public key (支付宝公钥), shown after the app's public key is uploaded: it verifies Alipay's answers.
ALIPAY_PUBLIC_KEY = env.str("ALIPAY_PUBLIC_KEY", default="", multiline=True)
# The merchant's PID (2088 and 12 digits): every notification must name it as seller_id.
ALIPAY_SELLER_ID = env.str("ALIPAY_SELLER_ID", default="")
ALIPAY_GATEWAY = env.str("ALIPAY_GATEWAY", default="https://openapi.alipay.com/gateway.do")
# Connecting and each read give up after this long; the task that called asks again later (same out_request_no).
ALIPAY_TIMEOUT_SECONDS = env.float("ALIPAY_TIMEOUT_SECONDS", default=10.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
