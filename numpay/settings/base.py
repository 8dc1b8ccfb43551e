"""Settings shared by every environment, all read from environment variables (django-environ).

The embedded defaults (SQLite, an SQLite Celery broker, a file-based cache under ``var/cache``,
localnet on 127.0.0.1:8899) are the same components in their single-machine form; ``DATABASE_URL``,
``CELERY_BROKER_URL``, ``REDIS_URL`` and ``SOLANA_RPC_URL`` switch to PostgreSQL, Redis/RabbitMQ and
any Solana cluster. Settings that belong to one app live in its ``app_settings.py`` (``relayer``:
``RELAYER_*``; ``wallets``: balance cache and faucet), read from the same environment variables.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(environ.Env().str("NUMPAY_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "allauth",
    "allauth.account",
    "allauth.headless",
    "allauth.mfa",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.google",
    "allauth.socialaccount.providers.apple",
    "allauth.socialaccount.providers.github",
    "allauth.socialaccount.providers.openid_connect",
    "numpay.core",
    "accounts",
    "wallets",
    "payments",
    "relayer",
    "recovery",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "csp.middleware.CSPMiddleware",
    "accounts.middleware.SocialFormActionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "numpay.core.middleware.JsonBodyGuardMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "numpay.core.middleware.ApplicationErrorMiddleware",
]

ROOT_URLCONF = "numpay.urls"
WSGI_APPLICATION = "numpay.wsgi.application"

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
                "numpay.core.context_processors.numpay",
                "recovery.context_processors.recovery_banner",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'numpay.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=0))
#: psycopg's connection pool per process (Django's ``OPTIONS["pool"]``; needs ``psycopg-pool``), instead of a
#: connection per request / task or per thread: ``DATABASE_POOL_MAX_SIZE`` > 0 turns it on (then
#: ``CONN_MAX_AGE`` is 0, as Django requires). Measured in bench/README.md.
DATABASE_POOL_MAX_SIZE = env.int("DATABASE_POOL_MAX_SIZE", default=0)
if DATABASE_POOL_MAX_SIZE > 0 and "postgresql" in DATABASES["default"]["ENGINE"]:
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": min(env.int("DATABASE_POOL_MIN_SIZE", default=2), DATABASE_POOL_MAX_SIZE),
        "max_size": DATABASE_POOL_MAX_SIZE, "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout let the web process, the worker and beat share one SQLite file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-numpay.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "numpay.core.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="numpay"),
        }
    }
    # Sessions (and so allauth headless session tokens) read through the cache, written to the DB.
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    # DESIGN.md "Processes": the embedded cache is shared by the web process, the worker and beat (balance
    # cache invalidation, rate limits, single-flight locks), so never a per-process LocMem cache. Files, not
    # the database: cache writes stay outside the callers' DB transactions and off SQLite's one write lock.
    CACHES = {
        "default": {
            "BACKEND": "numpay.core.cache.FileBasedCache",
            "LOCATION": env.str("CACHE_DIR", default=str(VAR_DIR / "cache")),
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="numpay"),
            "OPTIONS": {"MAX_ENTRIES": 5_000},
        }
    }

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"

LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "landing"

# --- email (the development outbox, listed at /dev/outbox/, in dev; SMTP in production) ---
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="accounts.outbox.OutboxEmailBackend")
# Seconds an SMTP connection may block (connect, each command): a hung server fails the send, which retries.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
# Where people reach Numpay (links in emails, e.g. "sign up to use it").
NUMPAY_PUBLIC_URL = env.str("NUMPAY_PUBLIC_URL", default="http://localhost:8000")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Numpay <no-reply@numpay.local>")

# --- allauth: email + password, phone + SMS code, social providers; headless API for apps ---
# Sign-in by phone (accounts/app_settings.py: SMS_SIGNIN_ENABLED, SMS_BACKEND, TWILIO_*). On, the one sign-up
# form takes an email address (with a password) or a mobile number (verified by an SMS code); accounts.forms
# requires one of the two, which allauth's check account.W001 cannot see.
SMS_SIGNIN_ENABLED = env.bool("SMS_SIGNIN_ENABLED", default=True)
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
ACCOUNT_SIGNUP_FORM_CLASS = "accounts.forms.SignupRules"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
if SMS_SIGNIN_ENABLED:
    ACCOUNT_LOGIN_METHODS = {"email", "phone"}
    ACCOUNT_SIGNUP_FIELDS = ["email", "phone", "password1", "password2"]
    SILENCED_SYSTEM_CHECKS = ["account.W001"]
else:
    ACCOUNT_LOGIN_METHODS = {"email"}
    ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_LOGIN_BY_CODE_ENABLED = True
ACCOUNT_LOGIN_BY_CODE_TIMEOUT = 15 * 60
ACCOUNT_LOGIN_BY_CODE_MAX_ATTEMPTS = 3
ACCOUNT_PHONE_VERIFICATION_ENABLED = True
ACCOUNT_PHONE_VERIFICATION_TIMEOUT = 15 * 60
ACCOUNT_PHONE_VERIFICATION_MAX_ATTEMPTS = 3
ACCOUNT_PHONE_VERIFICATION_SUPPORTS_RESEND = 3
ACCOUNT_PHONE_VERIFICATION_SUPPORTS_CHANGE = 2
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION", default="optional")
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_RATE_LIMITS = {
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "20/m/ip",
    "reset_password": "20/m/ip,5/m/key",
    # SMS codes cost money and reach real people: per number ("key") and per client IP.
    "verify_phone": "1/30s/key,3/m/ip",
    "request_login_code": "3/5m/key,10/m/ip",
    "change_phone": "1/m/user",
}
# Passkeys (WebAuthn): allauth's MFA WebAuthn support is the one credential store, used as a way to sign in
# (passkey sign-in with autofill, passkey sign-up), never as a second factor after a password; its ceremonies
# follow accounts/passkeys.py (UV required, attestation none, ES256, expiring challenges, sign-count rule).
MFA_ADAPTER = "accounts.adapters.MFAAdapter"
MFA_SUPPORTED_TYPES = ["webauthn"]
MFA_PASSKEY_LOGIN_ENABLED = True
# allauth's own passkey sign-up stays off: its system checks demand a required email, mandatory verification and
# verification by code (no links) for every sign-up, which phone sign-up, optional verification and the claim
# link exclude. accounts/passkey_signup.py applies those rules to the passkey sign-up alone (an email proved by a
# code, then allauth's passkey step), at /accounts/signup/passkey/ and /_allauth/*/v1/auth/webauthn/signup.
MFA_PASSKEY_SIGNUP_ENABLED = False
MFA_WEBAUTHN_USER_VERIFICATION = "required"
# The relying party: passkeys are bound to this domain; a ceremony's origin must be one of these exactly
# (accounts/checks.py checks they fit together).
WEBAUTHN_RP_ID = env.str("WEBAUTHN_RP_ID", default="localhost")
WEBAUTHN_RP_NAME = env.str("WEBAUTHN_RP_NAME", default="Numpay")
WEBAUTHN_ALLOWED_ORIGINS = env.list("WEBAUTHN_ALLOWED_ORIGINS", default=["http://localhost:8000"])
WEBAUTHN_CHALLENGE_TIMEOUT_SECONDS = env.int("WEBAUTHN_CHALLENGE_TIMEOUT_SECONDS", default=300)
# Social sign-in: a provider is offered (a button, the headless provider token flow) only when its
# environment variables are set; no database setup. A provider's email that matches an existing account
# never signs into it: the person signs in to that account first and connects the provider there.
SOCIALACCOUNT_ADAPTER = "accounts.adapters.SocialAccountAdapter"
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = False
SOCIALACCOUNT_LOGIN_ON_GET = False
SOCIALACCOUNT_STORE_TOKENS = False


def social_providers_from_env(environ_: environ.Env) -> dict[str, dict]:
    """``SOCIALACCOUNT_PROVIDERS`` with an app for each provider whose environment variables are set."""
    providers: dict[str, dict] = {}
    if environ_.str("GOOGLE_CLIENT_ID", default=""):
        providers["google"] = {
            "APPS": [{"client_id": environ_.str("GOOGLE_CLIENT_ID"), "secret": environ_.str("GOOGLE_CLIENT_SECRET",
                                                                                          default="")}],
            "SCOPE": ["profile", "email"], "AUTH_PARAMS": {"access_type": "online"}}
    if environ_.str("GITHUB_CLIENT_ID", default=""):
        providers["github"] = {
            "APPS": [{"client_id": environ_.str("GITHUB_CLIENT_ID"), "secret": environ_.str("GITHUB_CLIENT_SECRET",
                                                                                          default="")}],
            "SCOPE": ["user:email"]}
    if environ_.str("APPLE_CLIENT_ID", default=""):
        providers["apple"] = {"APPS": [{
            "client_id": environ_.str("APPLE_CLIENT_ID"), "secret": environ_.str("APPLE_KEY_ID", default=""),
            "key": environ_.str("APPLE_TEAM_ID", default=""),
            "settings": {"certificate_key": environ_.str("APPLE_PRIVATE_KEY", default="").replace("\\n", "\n")}}]}
    if environ_.str("OIDC_SERVER_URL", default=""):
        providers["openid_connect"] = {"APPS": [{
            "provider_id": environ_.str("OIDC_PROVIDER_ID", default="oidc"),
            "name": environ_.str("OIDC_PROVIDER_NAME", default="OpenID Connect"),
            "client_id": environ_.str("OIDC_CLIENT_ID", default=""),
            "secret": environ_.str("OIDC_CLIENT_SECRET", default=""),
            "settings": {"server_url": environ_.str("OIDC_SERVER_URL")}}]}
    return providers


SOCIALACCOUNT_PROVIDERS = social_providers_from_env(env)
# Clients' IP addresses (rate limits) come from X-Forwarded-For as set by this many trusted proxies (0: none,
# REMOTE_ADDR is the client). allauth and DRF's throttles read the same number.
ALLAUTH_TRUSTED_PROXY_COUNT = env.int("ALLAUTH_TRUSTED_PROXY_COUNT", default=0)
HEADLESS_ONLY = False
HEADLESS_CLIENTS = ("app", "browser")
HEADLESS_FRONTEND_URLS = {
    "account_confirm_email": "/accounts/confirm-email/{key}/",
    "account_reset_password_from_key": "/accounts/password/reset/key/{key}/",
    "account_signup": "/accounts/signup/",
}

# --- DRF / OpenAPI ---
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "numpay.core.authentication.SessionTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "numpay.core.api.CursorPagination",
    "PAGE_SIZE": 25,
    "EXCEPTION_HANDLER": "numpay.core.api.problem_exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "numpay.core.parsers.GuardedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "NUM_PROXIES": ALLAUTH_TRUSTED_PROXY_COUNT,
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.UserRateThrottle",
        "rest_framework.throttling.AnonRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": env.str("API_THROTTLE_USER", default="600/min"),
        "anon": env.str("API_THROTTLE_ANON", default="60/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Numpay API",
    "DESCRIPTION": (
        "Solana wallets without seed phrases. Authenticate with a browser session or an allauth "
        "headless app session token (`X-Session-Token`, from `/_allauth/app/v1/auth/login`). "
        "Errors are problem-details JSON (`application/problem+json`, RFC 9457) with a stable `code`; each "
        "operation lists the codes it can answer with, by HTTP status."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # The docs UI from our own static files (drf-spectacular-sidecar), not a CDN: see CONTENT_SECURITY_POLICY.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "numpay.core.schema.problem_content_types",
    ],
}

# --- Content-Security-Policy (django-csp): our pages load only our own scripts (htmx, numpay.js, the API
# docs from drf-spectacular-sidecar); no inline scripts. Inline styles stay allowed: htmx injects its
# indicator style and the admin uses style attributes. QR codes are data: URI images.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# --- Celery (DESIGN.md: always through Celery; embedded broker is SQLite via SQLAlchemy) ---
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=f"numpay-sqla+sqlite:///{VAR_DIR / 'broker.sqlite3'}")
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"relayer.tasks.*": {"queue": "chain"}}
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 90
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
#: Celery's Django fix-up (``celery.fixups.django``) closes every database connection before and after each task
#: unless ``db_reuse_max`` is set: a new PostgreSQL backend per task whatever ``CONN_MAX_AGE`` says (measured:
#: ~1,500 new connections in a 20 s payments bench, bench/README.md). Set out of reach here, and
#: :mod:`numpay.celery` closes connections around each task the way Django does around each request
#: (``close_old_connections``: ``CONN_MAX_AGE``, ``CONN_HEALTH_CHECKS``, a connection left in a broken or
#: non-autocommit state). With ``CONN_MAX_AGE`` 0 (the default) that is still a connection per task.
CELERY_DB_REUSE_MAX = 2**62
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict[str, dict] = {}

# --- Solana ---
SOLANA_RPC_URL = env.str("SOLANA_RPC_URL", default="http://127.0.0.1:8899")
SOLANA_CLUSTER = env.str("SOLANA_CLUSTER", default="localnet")
SOLANA_COMMITMENT = env.str("SOLANA_COMMITMENT", default="confirmed")
SOLANA_RPC_TIMEOUT_SECONDS = env.float("SOLANA_RPC_TIMEOUT_SECONDS", default=10.0)
SOLANA_RPC_MAX_RETRIES = env.int("SOLANA_RPC_MAX_RETRIES", default=4)
# The endpoint's websocket (PubSub) URL, used to have confirmations pushed (signatureSubscribe); empty =
# derived from SOLANA_RPC_URL (ws/wss, port + 1 when it names one, like solana-test-validator and web3.js),
# "none" = poll only. The outbox's batched poller runs either way.
SOLANA_WS_URL = env.str("SOLANA_WS_URL", default="")
LOCALNET_LEDGER_DIR = env.str("LOCALNET_LEDGER_DIR", default=str(VAR_DIR / "localnet"))

# --- Custody: key-encryption keys (DESIGN.md "Key custody") ---
# NUMPAY_KEKS = "id1:base64key,id2:base64key" (32-byte AES keys); NUMPAY_KEK_CURRENT_ID selects the one
# new data keys are wrapped with. Older ids stay listed until `rotate_kek` has re-wrapped everything.
NUMPAY_KEK_PROVIDER = env.str("NUMPAY_KEK_PROVIDER", default="wallets.custody.LocalKeyEncryptionKeyProvider")
NUMPAY_KEKS = env.str("NUMPAY_KEKS", default="")
NUMPAY_KEK_CURRENT_ID = env.str("NUMPAY_KEK_CURRENT_ID", default="")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpx2": {"level": "WARNING"}},
}

SESSION_COOKIE_AGE = int(timedelta(days=14).total_seconds())

# (RELAYER_* settings: relayer/app_settings.py; balance cache and faucet: wallets/app_settings.py)
CELERY_BEAT_SCHEDULE.update({
    "relayer-fee-payer-balance": {"task": "relayer.tasks.fee_payer_balance_check", "schedule": 60.0},
    "outbox-sweep": {"task": "relayer.tasks.outbox_sweep", "schedule": 5.0},
    "payments-expire": {"task": "payments.tasks.payment_expire_sweep", "schedule": 30.0},
    "deposits-scan": {"task": "wallets.tasks.deposit_scan", "schedule": 15.0},
    # block times of rows recorded without one, a few small batches a run (payments.block_times)
    "block-time-backfill": {"task": "payments.tasks.block_time_backfill", "schedule": 60.0},
    # guardian changes, expiries and due recoveries (executes_at <= now); NUMPAY_RECOVERY_SWEEP_SECONDS
    "recovery-sweep": {"task": "recovery.tasks.recovery_sweep",
                       "schedule": env.float("NUMPAY_RECOVERY_SWEEP_SECONDS", default=5.0)},
})
# Guardian recovery (issue 10; read by recovery/app_settings.py, which documents them all):
NUMPAY_RECOVERY_MIN_TIMELOCK_SECONDS = env.int("NUMPAY_RECOVERY_MIN_TIMELOCK_SECONDS", default=86_400)
NUMPAY_GUARDIAN_CHANGE_DELAY_SECONDS = env.int("NUMPAY_GUARDIAN_CHANGE_DELAY_SECONDS", default=129_600)
