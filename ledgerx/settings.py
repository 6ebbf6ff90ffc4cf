"""LedgerX settings, read from the environment with safe local defaults.

Without any environment LedgerX runs on an embedded SQLite file and an
in-process cache, which is what the README's run command and the default test
run use. Production sets DATABASE_URL (PostgreSQL) and REDIS_URL, and refuses to
start without a real secret key unless DJANGO_DEBUG is on.
"""

import hashlib
import os
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)
TESTING = env_bool("LEDGERX_TESTING", False)

# Public development keys: in this repository (and so on the internet). With
# DJANGO_DEBUG on they are the defaults; a DEBUG-off process refuses to start
# with any of them, whatever else is set (the test settings bring random keys of
# their own), and `check --deploy` fails on them (ledgerx.checks).
DEV_SECRET_KEYS = {
    "DJANGO_SECRET_KEY": "ledgerx-insecure-local-development-key-do-not-use-in-production",
    "LEDGERX_JWT_SIGNING_KEY": "ledgerx-insecure-local-jwt-signing-key-0123456789abcdef",
    "LEDGERX_PIN_PEPPER": "ledgerx-insecure-local-pin-pepper",
}
KNOWN_PUBLIC_KEYS = frozenset(
    {
        *DEV_SECRET_KEYS.values(),
        "ledgerx-insecure-local-audit-signing-key",
        # docker-compose.yml's placeholders before it required real keys
        "change-me-in-production-please-0123456789",
        "change-me-jwt-signing-key-0123456789abcdef",
        "change-me-pin-pepper-0123456789",
    }
)


def secret_from_env(name: str) -> str:
    """A secret from the environment; the public development value only with DJANGO_DEBUG on."""
    value = os.environ.get(name, "")
    if DEBUG:
        return value or DEV_SECRET_KEYS[name]
    if not value:
        raise ImproperlyConfigured(f"{name} is not set. Set it, or set DJANGO_DEBUG=1 for local development.")
    if value in KNOWN_PUBLIC_KEYS:
        raise ImproperlyConfigured(f"{name} is a public development key; set a secret one.")
    return value


SECRET_KEY = secret_from_env("DJANGO_SECRET_KEY")

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver" if DEBUG or TESTING else "")

INSTALLED_APPS = [
    # accounts first: its createsuperuser (role admin, --noinput without a full
    # name) must take precedence over django.contrib.auth's.
    "accounts",
    "audit.admin_config.BackOfficeAdminConfig",  # django.contrib.admin with LedgerX's site (login, branding)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_ratelimit",
    "ledger",
    "transactions",
    "audit",
    "events",
    "ledgerx",  # the project's own system checks (ledgerx.checks)
    "approvals",
    "fx",
    "backoffice",  # the admin's pages that read every app (timelines, dashboard, exports)
]

MIDDLEWARE = [
    "ledgerx.observability.middleware.RequestMetricsMiddleware",
    "ledgerx.api.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves the admin's static files from gunicorn (no separate web server needed).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "ledgerx.urls"
WSGI_APPLICATION = "ledgerx.wsgi.application"
ASGI_APPLICATION = "ledgerx.asgi.application"

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

# --- Database ---------------------------------------------------------------
# SQLite is configured for correct serialized writes: WAL so readers do not block
# the writer, a busy timeout so writers queue instead of failing, and
# BEGIN IMMEDIATE so a transaction takes the write lock before it reads the
# balances it will check (SQLite's equivalent of SELECT ... FOR UPDATE).
SQLITE_PATH = os.environ.get("LEDGERX_SQLITE_PATH", str(BASE_DIR / "db.sqlite3"))
SQLITE_OPTIONS = {
    "transaction_mode": "IMMEDIATE",
    "timeout": 30,
    "init_command": (
        "PRAGMA journal_mode=WAL;"
        "PRAGMA synchronous=NORMAL;"
        "PRAGMA busy_timeout=30000;"
        "PRAGMA foreign_keys=ON;"
    ),
}
DATABASE_URL = os.environ.get("DATABASE_URL", "")
# DATABASE_URL reaches the primary through a transaction-pooling PgBouncer:
# consecutive transactions of one Django connection may run on different
# server sessions, so nothing may outlive a transaction there. The in-flight
# guard across a PIN check becomes the cache marker (transactions.idempotency)
# and prepared statements are off unless LEDGERX_DB_PREPARE=1 says the pooler
# keeps them (PgBouncer >= 1.21 with max_prepared_statements).
DB_TRANSACTION_POOLING = env_bool("LEDGERX_DB_TRANSACTION_POOLING", False)
DB_PREPARE = env_bool("LEDGERX_DB_PREPARE", not DB_TRANSACTION_POOLING)
# Two roles on PostgreSQL: DATABASE_URL is the application's (no ownership, no
# UPDATE/DELETE/TRUNCATE on the append-only tables: `manage.py db_app_role`),
# DATABASE_MIGRATE_URL the tables' owner, used only by the commands that change
# the schema or the grants. Unset, one connection does everything (the embedded
# default, local PostgreSQL).
DATABASE_MIGRATE_URL = os.environ.get("DATABASE_MIGRATE_URL", "")
OWNER_COMMANDS = ("migrate", "db_app_role")
if DATABASE_MIGRATE_URL and sys.argv[1:2] and sys.argv[1] in OWNER_COMMANDS and Path(sys.argv[0]).name == "manage.py":
    DATABASE_URL = DATABASE_MIGRATE_URL
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=env_int("LEDGERX_CONN_MAX_AGE", 60),
            conn_health_checks=True,
        )
    }
    # The in-flight guard of an idempotency key is an advisory lock held by the
    # request's connection (transactions.idempotency). If an app host vanishes
    # without closing its TCP connections, these make PostgreSQL notice within
    # about a minute and end the session, releasing the lock (the contract: a
    # request whose worker died can be retried after about a minute).
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        _options = DATABASES["default"].setdefault("OPTIONS", {})
        if not DB_TRANSACTION_POOLING:
            # (A pooler in front keeps its own server connections; the startup
            # option would not reach PostgreSQL through it, and nothing is
            # held at session level then: see DB_TRANSACTION_POOLING.)
            _options["options"] = (
                _options.get("options", "") + " -c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3"
            ).strip()
        # Prepared statements for the cursors of ledgerx.fastsql.prepared_cursor only
        # (Django's own cursors bind client-side and never prepare): prepared on
        # first use. LEDGERX_DB_PREPARE=0 turns them off, e.g. behind a
        # transaction-pooling PgBouncer older than 1.21, which cannot keep them.
        _options.setdefault("prepare_threshold", 0 if DB_PREPARE else None)
        # An unreachable server fails a connection attempt in seconds (503 with
        # Retry-After, /readyz 503) instead of holding a worker until it is killed.
        _options.setdefault("connect_timeout", 5)
    elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        # A SQLite file named by URL serializes its writes like the default file.
        DATABASES["default"]["OPTIONS"] = {**SQLITE_OPTIONS, **DATABASES["default"].get("OPTIONS", {})}
        DATABASES["default"]["CONN_MAX_AGE"] = 0
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": SQLITE_PATH,
            "OPTIONS": SQLITE_OPTIONS,
            "TEST": {"NAME": os.environ.get("LEDGERX_SQLITE_TEST_PATH") or None},
        }
    }
IS_POSTGRES = DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql")

# Streaming read replicas of the primary, comma-separated URLs (ledgerx.db.replicas).
# None: every statement runs on the primary, as without this setting.
DATABASE_REPLICA_URLS = env_list("DATABASE_REPLICA_URLS", "")
# A replica further behind than this many seconds is skipped (reads use the primary).
REPLICA_MAX_LAG = float(os.environ.get("LEDGERX_REPLICA_MAX_LAG", "2"))
REPLICA_ALIASES: list[str] = []
if DATABASE_REPLICA_URLS:
    if not IS_POSTGRES:
        raise ImproperlyConfigured("DATABASE_REPLICA_URLS needs a PostgreSQL DATABASE_URL")
    for _number, _url in enumerate(DATABASE_REPLICA_URLS, start=1):
        _replica = dj_database_url.parse(_url, conn_max_age=env_int("LEDGERX_CONN_MAX_AGE", 60), conn_health_checks=True)
        # A replica that does not answer is skipped, not waited for.
        _replica["OPTIONS"] = {"connect_timeout": 2, "prepare_threshold": None, **_replica.get("OPTIONS", {})}
        # The test suite's replica is its own database (one copy, no lag).
        _replica["TEST"] = {"MIRROR": "default"}
        DATABASES[f"replica{_number}"] = _replica
        REPLICA_ALIASES.append(f"replica{_number}")
    DATABASE_ROUTERS = ["ledgerx.db.router.PrimaryReplicaRouter"]
    # Inside the request context (the user id it sets is still there when the response passes).
    MIDDLEWARE.insert(MIDDLEWARE.index("ledgerx.api.middleware.RequestContextMiddleware") + 1, "ledgerx.db.middleware.ReadYourWritesMiddleware")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "ledgerx",
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": 0.5,
                "SOCKET_TIMEOUT": 0.5,
                "CONNECTION_POOL_KWARGS": {"max_connections": env_int("LEDGERX_REDIS_POOL", 50)},
            },
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "ledgerx",
        }
    }
    # The in-process cache is shared by every thread of the single local
    # process (runserver), which is the only way it is used; production sets
    # REDIS_URL so limits are shared across workers.
    SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]

# --- Identity -----------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"

PASSWORD_HASHERS = [
    # bcrypt over a SHA-256 pre-hash: passwords longer than bcrypt's 72 bytes
    # count in full.
    "accounts.hashers.BCryptSHA256Cost12PasswordHasher",
]
if env_bool("LEDGERX_FAST_PASSWORD_HASHER", False):
    # Tests that do not check hashing itself use this to stay fast.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *PASSWORD_HASHERS]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

PIN_PEPPER = secret_from_env("LEDGERX_PIN_PEPPER")
PIN_BCRYPT_ROUNDS = env_int("LEDGERX_PIN_BCRYPT_ROUNDS", 12)
PIN_MAX_ATTEMPTS = 3
# How long a PIN that bcrypt accepted is accepted again from its cached proof
# without bcrypt (accounts.pin_cache); 0 turns the verified-PIN cache off.
PIN_CACHE_SECONDS = env_int("LEDGERX_PIN_CACHE_SECONDS", 300)
if PIN_CACHE_SECONDS < 0:
    raise ImproperlyConfigured("LEDGERX_PIN_CACHE_SECONDS must be 0 (off) or a number of seconds.")

JWT_SIGNING_KEY = secret_from_env("LEDGERX_JWT_SIGNING_KEY")

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env_int("LEDGERX_ACCESS_TOKEN_SECONDS", 300)),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=env_int("LEDGERX_REFRESH_TOKEN_SECONDS", 7 * 24 * 3600)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": JWT_SIGNING_KEY,
    "ISSUER": os.environ.get("LEDGERX_JWT_ISSUER", "ledgerx"),
    "AUDIENCE": os.environ.get("LEDGERX_JWT_AUDIENCE", "ledgerx-api"),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "sub",
    "AUTH_HEADER_TYPES": ("Bearer",),
}

# --- Rate limits ----------------------------------------------------------------
RATELIMIT_ENABLE = env_bool("LEDGERX_RATELIMIT_ENABLE", True)
AUTH_RATE = os.environ.get("LEDGERX_AUTH_RATE", "5/m")
API_RATE = os.environ.get("LEDGERX_API_RATE", "600/m")
# Number of reverse proxies in front of LedgerX whose X-Forwarded-For entries
# are trusted. 0: the client IP is REMOTE_ADDR and X-Forwarded-For is ignored.
TRUSTED_PROXY_COUNT = env_int("LEDGERX_TRUSTED_PROXIES", 0)

# --- Observability ------------------------------------------------------------------------
# GET /metrics (Prometheus) answers only with this bearer token; unset, it is a 404.
METRICS_TOKEN = os.environ.get("LEDGERX_METRICS_TOKEN", "")
# manage.py worker serves its own counters (webhook deliveries) on this port when set (0: off).
WORKER_METRICS_PORT = env_int("LEDGERX_WORKER_METRICS_PORT", 0)
WORKER_METRICS_ADDR = os.environ.get("LEDGERX_WORKER_METRICS_ADDR", "127.0.0.1")

# --- Money ------------------------------------------------------------------------
# ISO 4217 code -> minor-unit exponent. Adding JPY (0) or KWD (3) is a settings change.
CURRENCIES = {"USD": 2, "NGN": 2, "GBP": 2, "EUR": 2}
_extra = os.environ.get("LEDGERX_EXTRA_CURRENCIES", "")  # e.g. "JPY:0,KWD:3"
for _item in filter(None, (part.strip() for part in _extra.split(","))):
    _code, _exp = _item.split(":")
    CURRENCIES[_code.strip().upper()] = int(_exp)
MAX_AMOUNT = 10**15
HOLD_TTL = timedelta(seconds=env_int("LEDGERX_HOLD_TTL", 7 * 24 * 3600))
# Rows per system account (funding, payouts per currency): a movement picks one
# at random, so deposits do not serialize on one hot row (ledger.models).
LEDGER_SYSTEM_SHARDS = 8
# Rows per FX pool (per currency): a conversion locks two pools (one per currency) through its
# commit, so conversions of one pair meet on a pool shard far more often than deposits on a funding one.
LEDGER_FX_POOL_SHARDS = 32
IDEMPOTENCY_RETENTION = timedelta(hours=env_int("LEDGERX_IDEMPOTENCY_RETENTION_HOURS", 48))
IDEMPOTENCY_IN_FLIGHT_SECONDS = env_int("LEDGERX_IDEMPOTENCY_IN_FLIGHT_SECONDS", 60)
# Currency conversion (fx): a rate older than this refuses new quotes; a quote is firm this long (at least 30 s).
FX_MAX_AGE = timedelta(seconds=env_int("LEDGERX_FX_MAX_AGE", 24 * 3600))
FX_QUOTE_TTL = timedelta(seconds=max(30, env_int("LEDGERX_FX_QUOTE_SECONDS", 30)))

# --- Events and webhooks -------------------------------------------------------------
# Development and tests only: allow http:// and private/loopback webhook URLs.
WEBHOOKS_ALLOW_INSECURE = env_bool("LEDGERX_WEBHOOKS_ALLOW_INSECURE", False)
# The key webhook secrets are derived from (events.signing); unset, one derived
# from DJANGO_SECRET_KEY. Changing it changes every endpoint's secret.
WEBHOOKS_SECRET_KEY = os.environ.get("LEDGERX_WEBHOOKS_SECRET_KEY", "") or hashlib.sha256(
    b"ledgerx.webhooks:" + SECRET_KEY.encode()
).hexdigest()
# Per-attempt timeout (seconds) of a webhook delivery; the contract says 10.
WEBHOOKS_TIMEOUT = float(os.environ.get("LEDGERX_WEBHOOKS_TIMEOUT") or 10)
# Finished deliveries older than this many days are pruned by the worker.
WEBHOOKS_DELIVERY_RETENTION_DAYS = env_int("LEDGERX_WEBHOOKS_DELIVERY_RETENTION_DAYS", 30)
# PostgreSQL: an idle worker waits for a NOTIFY of new deliveries (polling stays the fallback).
# 0 when the worker's connection goes through a transaction-pooling PgBouncer, which cannot LISTEN.
WEBHOOKS_LISTEN = env_bool("LEDGERX_WEBHOOKS_LISTEN", True)

# --- Audit --------------------------------------------------------------------------
# How often (seconds) the background sealers extend the audit hash chain over what
# committed since their last run (they run on wall-clock multiples of it). This is
# the tamper-evidence window: a committed audit record is sealed within about one
# interval of its commit (two if another process's sealer was running then), or by
# the next sealer anywhere / `seal_audit` if its process dies first. Longer is
# cheaper per record: one sealing transaction covers more records.
AUDIT_SEAL_INTERVAL = float(os.environ.get("LEDGERX_AUDIT_SEAL_INTERVAL") or 0.25)
if not 0 <= AUDIT_SEAL_INTERVAL <= 60:
    raise ImproperlyConfigured("LEDGERX_AUDIT_SEAL_INTERVAL must be between 0 and 60 seconds.")
# Seal in a background thread per process (one run per interval, whatever the
# rate of commits); the test suite seals inline after each commit, so a test
# sees its records sealed when the change returns.
AUDIT_SEAL_IN_BACKGROUND = not TESTING
# Signed checkpoints of the chain's head (audit.checkpoints): the key never goes in
# the database; each checkpoint is also appended to an external, append-only sink
# (this JSON-lines file; ship it to storage with a retention lock). Unset (in
# production), no checkpoints are made and `check --deploy` warns.
AUDIT_SIGNING_KEY = os.environ.get("LEDGERX_AUDIT_SIGNING_KEY", "")
if not AUDIT_SIGNING_KEY and DEBUG:
    AUDIT_SIGNING_KEY = "ledgerx-insecure-local-audit-signing-key"
elif AUDIT_SIGNING_KEY in KNOWN_PUBLIC_KEYS and not DEBUG:
    raise ImproperlyConfigured("LEDGERX_AUDIT_SIGNING_KEY is a public development key; set a secret one.")
AUDIT_CHECKPOINT_FILE = os.environ.get("LEDGERX_AUDIT_CHECKPOINT_FILE", str(BASE_DIR / "audit-checkpoints.jsonl"))
# Seconds between checkpoints while records are being sealed: the owner of the
# tables can rewrite at most this much recent history undetected.
AUDIT_CHECKPOINT_INTERVAL = float(os.environ.get("LEDGERX_AUDIT_CHECKPOINT_INTERVAL") or 60)

# --- Back office ------------------------------------------------------------------------
# Four-eyes approvals: a reversal whose amount is at or above its currency's
# threshold (minor units; "USD:100000,NGN:50000000") waits for a second admin.
# A currency not named, or the variable unset, never needs one.
FOUR_EYES_AMOUNT: dict[str, int] = {}
for _item in env_list("LEDGERX_FOUR_EYES_AMOUNT", ""):
    _code, _, _minor = _item.partition(":")
    if not _minor.strip().isdigit():
        raise ImproperlyConfigured("LEDGERX_FOUR_EYES_AMOUNT is a comma-separated list of CUR:minor_units.")
    FOUR_EYES_AMOUNT[_code.strip().upper()] = int(_minor)
# With it on, every reinstatement of a suspended user waits for a second admin.
FOUR_EYES_REINSTATE = env_bool("LEDGERX_FOUR_EYES_REINSTATE", False)
# Back-office (admin site) sessions: end after this many idle seconds (each
# request refreshes the expiry) and when the browser closes.
SESSION_COOKIE_AGE = env_int("LEDGERX_ADMIN_SESSION_IDLE_SECONDS", 30 * 60)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# A back-office action that changes someone's money or access (freeze, suspend,
# reverse, approve...) asks for the password again once the session's last
# password check is older than this (audit.admin_reauth); 0 asks every time.
ADMIN_REAUTH_SECONDS = env_int("LEDGERX_ADMIN_REAUTH_SECONDS", 5 * 60)

# --- REST framework ---------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.LedgerXJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["ledgerx.api.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "ledgerx.api.pagination.NewestFirstCursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "ledgerx.api.errors.exception_handler",
    # settings.API_RATE per user; raises RateLimited itself (see ledgerx/api/ratelimit.py).
    "DEFAULT_THROTTLE_CLASSES": ["ledgerx.api.ratelimit.APIRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "LedgerX API",
    "DESCRIPTION": "Double-entry ledger and money movement API. Amounts are integers of minor units.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Two "type" choice sets: every transaction type, and the ones a batch item may be.
    "ENUM_NAME_OVERRIDES": {
        "TransactionTypeEnum": ["deposit", "withdrawal", "transfer", "reversal"],
        "BatchItemTypeEnum": ["deposit", "withdrawal", "transfer"],
    },
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # Every status, error code and header each operation can answer: ledgerx/api/openapi.py.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "ledgerx.api.openapi.postprocess"],
    "SERVE_AUTHENTICATION": [],
    "ENUM_NAME_OVERRIDES": {
        "EventTypeEnum": "events.models.EventType",
        "TransactionTypeEnum": ["deposit", "withdrawal", "transfer", "reversal"],
        "WebhookEndpointStatusEnum": "events.models.WebhookEndpoint.Status",
        "DeliveryStatusEnum": "events.models.Delivery.Status",
    },
}

# --- Requests, logging ----------------------------------------------------------------
CSRF_FAILURE_VIEW = "ledgerx.api.errors.csrf_failure"
MAX_BODY_BYTES = env_int("LEDGERX_MAX_BODY_BYTES", 64 * 1024)
# POST batches carries up to 1000 items: its own, larger ceiling.
MAX_BATCH_BODY_BYTES = env_int("LEDGERX_MAX_BATCH_BODY_BYTES", 2 * 1024 * 1024)
# Django's own limit is the larger one; the request middleware applies each path's.
DATA_UPLOAD_MAX_MEMORY_SIZE = max(MAX_BODY_BYTES, MAX_BATCH_BODY_BYTES)

LOG_LEVEL = os.environ.get("LEDGERX_LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "ledgerx.logging.RequestContextFilter"}},
    "formatters": {"json": {"()": "ledgerx.logging.JsonFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["request_context"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Requests are logged once, by our middleware, with their request id.
        "django.request": {"handlers": [], "level": "CRITICAL", "propagate": False},
        "django.server": {"handlers": [], "level": "CRITICAL", "propagate": False},
    },
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
# Admin times to the second with the zone ("2026-12-02 15:01:07 UTC"): ledgerx/formats/en/.
FORMAT_MODULE_PATH = ["ledgerx.formats"]
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Locally and in tests WhiteNoise serves straight from the apps' static folders;
# production serves the collectstatic output (hashed, compressed).
WHITENOISE_USE_FINDERS = DEBUG or TESTING
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- Production hardening ------------------------------------------------------------
if not DEBUG:
    # X-Forwarded-Proto says "this came over HTTPS" only when a proxy we trust
    # wrote it; with no trusted proxy any client could send it (and skip the
    # redirect to HTTPS). Deployment rule: LEDGERX_TRUSTED_PROXIES > 0 only when
    # the proxy overwrites the header the client sent.
    if TRUSTED_PROXY_COUNT > 0:
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("LEDGERX_SSL_REDIRECT", not TESTING)
    SESSION_COOKIE_SECURE = not TESTING
    CSRF_COOKIE_SECURE = not TESTING
    SECURE_HSTS_SECONDS = env_int("LEDGERX_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"
