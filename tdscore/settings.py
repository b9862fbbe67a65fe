"""Settings, read from the environment. A `.env` beside manage.py is optional."""

import os
from pathlib import Path

import environ
from django.core.management.utils import get_random_secret_key

from tdscore import logs

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# TDS_ENV_FILE points elsewhere (tests run `make run`'s devserver against a temporary one).
environ.Env.read_env(env.str("TDS_ENV_FILE", default=str(BASE_DIR / ".env")), overwrite=False)

# --- Core -------------------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
# No production default: the check tdscore.E001 refuses to serve without one. Tests and one-off
# commands get a throwaway key so they never need a .env.
SECRET_KEY = env.str("SECRET_KEY", default="")
SECRET_KEY_FROM_ENV = bool(SECRET_KEY)
if not SECRET_KEY:
    SECRET_KEY = get_random_secret_key()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_TZ = True
LANGUAGE_CODE = "en-us"
USE_I18N = False

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "django_htmx",
    "tdscore",
    "sync",
    "sync.zoho",
    "erp",
    "monitoring",
    "alerts",
    "dashboard",
    "zohosim",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # A database outage is 503 on every page, never 500.
    "tdscore.middleware.DatabaseUnavailableMiddleware",
]

# --- HTTPS behind a TLS-terminating proxy (nginx; `check --deploy`) ---------------------------------
# Off by default so `make run` serves plain http on 127.0.0.1. TDS_PROXY_SSL_HEADER trusts the
# proxy's X-Forwarded-Proto (only when the proxy sets it on every request, overwriting the client's).
if env.bool("TDS_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("TDS_SECURE_SSL_REDIRECT", default=False)
# The load balancer probes and Prometheus scrapes over plain http inside the network; a redirect
# there would read as "down". Webhooks are not exempt: Zoho sends them over https.
SECURE_REDIRECT_EXEMPT = [r"^health(/ready)?$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("TDS_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("TDS_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("TDS_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("TDS_SECURE_COOKIES", default=False)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

ROOT_URLCONF = "tdscore.urls"
WSGI_APPLICATION = "tdscore.wsgi.application"
ASGI_APPLICATION = "tdscore.asgi.application"

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
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # `make run` has the web server and the qcluster writing at once: WAL lets readers through,
    # IMMEDIATE makes writers queue on the busy timeout instead of failing "database is locked"
    # when a read transaction tries to upgrade.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    # One connection pool per process (psycopg_pool, through Django): connections are kept between
    # requests (a new PostgreSQL connection per webhook cost more than the webhook itself: /health
    # went from ~130 to ~600 req/s on one connection), and a process never holds more than
    # TDS_DB_POOL_MAX of them however many threads it serves from (runserver, gthread, qcluster):
    # one persistent connection per thread once took runserver to the server's connection limit.
    # A request waits up to TDS_DB_POOL_TIMEOUT seconds for a free one, then answers 503.
    # TDS_DB_POOL_MAX=0 turns the pool off: one connection per thread, kept `conn_max_age` (0 unless
    # DATABASE_URL says otherwise), for a server-side pooler that must see each client connect.
    # Health checks hand out or keep only connections that answer.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    TDS_DB_POOL_MAX = env.int("TDS_DB_POOL_MAX", default=4)
    if TDS_DB_POOL_MAX > 0:
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps them; Django must not as well
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": TDS_DB_POOL_MAX,
            "timeout": env.float("TDS_DB_POOL_TIMEOUT", default=10.0),
            "name": "tdscore",
        }
    # The webhook's one statement runs as a protocol-level prepared statement (sync.webhooks), kept
    # per connection: half of PostgreSQL's work per webhook was parsing and planning it. That cursor
    # prepares at once; 5 (psycopg's default) only counts for other server-binding cursors, and
    # Django's own queries bind on the client and never prepare, whatever this says. Set
    # TDS_DB_PREPARED_STATEMENTS=false behind a transaction-pooling PgBouncer older than 1.21 (or
    # with max_prepared_statements = 0), where a prepared statement may be on another backend.
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
        5 if env.bool("TDS_DB_PREPARED_STATEMENTS", default=True) else None
    )
    # Each test run gets its own database, so parallel runs (CI, helpers, benches) never collide.
    DATABASES["default"]["TEST"] = {"NAME": f"test_tdscore_{os.getpid()}"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ------------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Static files (whitenoise: the console must work on a closed network) -----------------------
STATIC_URL = "/static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve straight from the apps when collectstatic has not run (tests, a first `make run`).
WHITENOISE_USE_FINDERS = True

# --- Auth, API --------------------------------------------------------------------------------
LOGIN_URL = "/admin/login/"
REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header makes anonymous requests 401, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Each view names the permissions each method needs (tdscore.permissions, as the admin).
    "DEFAULT_PERMISSION_CLASSES": ["dashboard.api.permissions.Needs"],
    "DEFAULT_PAGINATION_CLASS": "dashboard.api.pagination.Pages",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Per user, counted in the cache (Redis, when configured, shares the count between processes).
    "DEFAULT_THROTTLE_CLASSES": ["dashboard.api.throttles.OperatorThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": env.str("TDS_API_RATE", default="3000/minute")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "TDS Core API",
    "VERSION": "1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAdminUser"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "dashboard.api.schema.add_common_answers",
    ],
}

# --- Webhooks ---------------------------------------------------------------------------------
# Each may hold several comma-separated values, all accepted, so secrets rotate without downtime.
TDS_WEBHOOK_TOKEN = env.list("TDS_WEBHOOK_TOKEN", default=[])
TDS_WEBHOOK_SECRET = env.list("TDS_WEBHOOK_SECRET", default=[])
TDS_ZOHO_WEBHOOK_SECRET = env.list("TDS_ZOHO_WEBHOOK_SECRET", default=[])
TDS_STANDARD_WEBHOOK_SECRET = env.list("TDS_STANDARD_WEBHOOK_SECRET", default=[])
TDS_WEBHOOK_MAX_BYTES = env.int("TDS_WEBHOOK_MAX_BYTES", default=1_048_576)
# Django's own cap must not refuse a body before our 413 answers it.
DATA_UPLOAD_MAX_MEMORY_SIZE = None

# --- Zoho ------------------------------------------------------------------------------------
ZOHO_DC = env.str("ZOHO_DC", default="com")
ZOHO_CLIENT_ID = env.str("ZOHO_CLIENT_ID", default="")
ZOHO_CLIENT_SECRET = env.str("ZOHO_CLIENT_SECRET", default="")
ZOHO_REFRESH_TOKEN = env.str("ZOHO_REFRESH_TOKEN", default="")
ZOHO_ORGANIZATION_ID = env.str("ZOHO_ORGANIZATION_ID", default="")
ZOHO_PLAN = env.str("ZOHO_PLAN", default="free")
ZOHO_API_BASE = env.str("ZOHO_API_BASE", default="")
ZOHO_ACCOUNTS_BASE = env.str("ZOHO_ACCOUNTS_BASE", default="")
# Zoho onboarding, data centres and plans. ZOHO_DC is one of sync.zoho.client.DATA_CENTRES
# (com, eu, in, com.au, jp, ca, sa, com.cn, uk, ae); ZOHO_PLAN one of sync.zoho.limiter.DAILY_CAPS
# (free … ultimate). ZOHO_DAILY_CAP: a cap Zoho raised on request. TDS_ENCRYPTION_KEY: keys for
# the tokens zoho_connect stores (first encrypts, all decrypt); unset, derived from SECRET_KEY.
ZOHO_DAILY_CAP = env.int("ZOHO_DAILY_CAP", default=None)
TDS_ENCRYPTION_KEY = env.list("TDS_ENCRYPTION_KEY", default=[])

# --- Alert channels --------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
ALERT_EMAIL_TO = env.list("ALERT_EMAIL_TO", default=[])
# Without ALERT_EMAIL_TO, alert e-mails go to the active superusers' addresses, so a new install
# notifies somebody (under `make run`, printed by the console backend); false turns that off.
ALERT_EMAIL_ADMINS = env.bool("ALERT_EMAIL_ADMINS", default=True)
SLACK_WEBHOOK_URL = env.str("SLACK_WEBHOOK_URL", default="")
ALERT_WEBHOOK_URL = env.str("ALERT_WEBHOOK_URL", default="")
ALERT_WEBHOOK_SECRET = env.str("ALERT_WEBHOOK_SECRET", default="")
TELEGRAM_BOT_TOKEN = env.str("TELEGRAM_BOT_TOKEN", default="")
TELEGRAM_CHAT_ID = env.str("TELEGRAM_CHAT_ID", default="")
TELEGRAM_API_BASE = env.str("TELEGRAM_API_BASE", default="https://api.telegram.org")
# Escalations of unacknowledged criticals go to these channels (comma-separated names) when set,
# else to every enabled channel.
ALERT_ESCALATION_CHANNELS = env.list("ALERT_ESCALATION_CHANNELS", default=[])
ALERT_EMAIL_FROM = env.str("ALERT_EMAIL_FROM", default="tds-core@localhost")
# Where notifications link to (the admin's alert page, the dashboard).
TDS_BASE_URL = env.str("TDS_BASE_URL", default="http://127.0.0.1:8000")

# --- django-q2: entry points are thin, named by dotted path -------------------------------------
# Our queue table owns retries and the DLQ, so a task is tried once. A drain runs until a deadline
# below `timeout`, and `retry` exceeds `timeout` so a slow task is never handed out twice.
Q_BROKER = env.str("Q_BROKER", default="orm")
# Each drainer (the `drainers` key) keeps one cluster worker for good; pull and reconciliation runs
# may take the rest at once and never more (sync.run_lifecycle.run_slots; setup_schedules and
# tds_status print the split), so TDS_Q_WORKERS must exceed `drainers` for scheduled runs to start.
Q_CLUSTER = {
    "name": "tdscore",
    "workers": env.int("TDS_Q_WORKERS", default=2),
    "timeout": 90,
    "retry": 120,
    "max_attempts": 1,
    "catch_up": False,
    "save_limit": -1,
    "ack_failures": True,
    "poll": 0.5,
    "label": "Django Q2",
}
if Q_BROKER == "redis":
    Q_CLUSTER["redis"] = REDIS_URL or "redis://127.0.0.1:6379/0"
else:
    Q_CLUSTER["orm"] = "default"
# The drain loop stops this long before django-q2's timeout would kill it.
TDS_DRAIN_DEADLINE_SECONDS = env.float("TDS_DRAIN_DEADLINE_SECONDS", default=60)
# Idle drainers are woken when work commits (sync.wakeup): NOTIFY on PostgreSQL, PUBLISH when
# Redis is configured; the poll interval stays the backstop. false: drainers only poll, for a
# PgBouncer in transaction mode, which does not keep a LISTEN (docs/OPERATIONS.md).
TDS_WAKEUPS = env.bool("TDS_WAKEUPS", default=True)
TDS_WAKEUP_REDIS_URL = REDIS_URL or Q_CLUSTER.get("redis", "")

# --- Logging (tdscore.logs) ---------------------------------------------------------------------
# JSON lines unless DEBUG or a terminal (LOG_FORMAT=json|text decides); secrets redacted everywhere.
LOGGING = logs.logging_config(
    log_format=logs.log_format(env.str("LOG_FORMAT", default=""), debug=DEBUG),
    level=env.str("LOG_LEVEL", default="INFO"),
    httpx_level=env.str("LOG_HTTPX", default="WARNING").upper(),
)

# How long a process trusts its cached copy of tds_configuration (tdscore.config).
TDS_CONFIG_CACHE_SECONDS = env.float("TDS_CONFIG_CACHE_SECONDS", default=1.0)
