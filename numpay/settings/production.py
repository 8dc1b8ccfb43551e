"""Production settings: no defaults for secrets or embedded components; refuse to start without them.

Required: DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS, DATABASE_URL, NUMPAY_KEKS + NUMPAY_KEK_CURRENT_ID
(or another NUMPAY_KEK_PROVIDER), the relayer fee payer key (RELAYER_FEE_PAYER_KEYPAIR or
RELAYER_FEE_PAYER_KEYPAIR_PATH pointing at an existing file), REDIS_URL (cache, rate limits, locks),
a real CELERY_BROKER_URL (Redis or RabbitMQ, not the embedded SQLite broker) and
ALLAUTH_TRUSTED_PROXY_COUNT (how many proxies set X-Forwarded-For; 0 when none).
Sign-in by phone is off unless SMS_SIGNIN_ENABLED=true, and then needs Twilio's credentials
(TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID).
The development outbox (/dev/outbox/) never exists in production.
Static files are served by whitenoise from STATIC_ROOT with hashed names: run
``manage.py collectstatic`` at each deploy (the web server refuses to start without its manifest).
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import env


def _require(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise ImproperlyConfigured(f"{name} must be set in production")
    return value


DEBUG = False
SECRET_KEY = _require("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=[]) or []
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must be set in production")
# Passkeys are bound to the site's domain (the first allowed host unless WEBAUTHN_RP_ID says otherwise), and
# come only from its https origin(s); accounts/checks.py checks they fit together.
WEBAUTHN_RP_ID = env.str("WEBAUTHN_RP_ID", default=ALLOWED_HOSTS[0].lstrip("."))
WEBAUTHN_ALLOWED_ORIGINS = env.list("WEBAUTHN_ALLOWED_ORIGINS", default=[f"https://{WEBAUTHN_RP_ID}"])
_require("DATABASE_URL")
_require("REDIS_URL")
if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):  # noqa: F405
    raise ImproperlyConfigured("REDIS_URL must be a redis://, rediss:// or unix:// URL in production")
_broker = _require("CELERY_BROKER_URL")
if not _broker.startswith(("redis://", "rediss://", "amqp://", "amqps://", "sentinel://", "sqs://")):
    raise ImproperlyConfigured("CELERY_BROKER_URL must be a Redis, RabbitMQ (amqp) or SQS broker in production, "
                               "not the embedded SQLite one")
_proxy_count = _require("ALLAUTH_TRUSTED_PROXY_COUNT")
if not _proxy_count.isdigit():
    raise ImproperlyConfigured("ALLAUTH_TRUSTED_PROXY_COUNT must be a whole number (0 when no proxy is in front)")
if NUMPAY_KEK_PROVIDER == "wallets.custody.LocalKeyEncryptionKeyProvider":  # noqa: F405
    NUMPAY_KEKS = _require("NUMPAY_KEKS")
    NUMPAY_KEK_CURRENT_ID = _require("NUMPAY_KEK_CURRENT_ID")
if not os.environ.get("RELAYER_FEE_PAYER_KEYPAIR") and not os.environ.get("RELAYER_SIGNER_CLASS"):
    _path = _require("RELAYER_FEE_PAYER_KEYPAIR_PATH")
    if not os.path.exists(_path):
        raise ImproperlyConfigured("RELAYER_FEE_PAYER_KEYPAIR_PATH does not point at a file")

# Sign-in by phone: off unless asked for; on, only with a real SMS gateway and its credentials.
SMS_SIGNIN_ENABLED = env.bool("SMS_SIGNIN_ENABLED", default=False)
SMS_BACKEND = env.str("SMS_BACKEND", default="twilio")
if SMS_SIGNIN_ENABLED:
    if SMS_BACKEND != "twilio":
        raise ImproperlyConfigured("SMS_BACKEND must be 'twilio' in production when SMS_SIGNIN_ENABLED is on")
    _require("TWILIO_ACCOUNT_SID")
    _require("TWILIO_AUTH_TOKEN")
    if not os.environ.get("TWILIO_FROM_NUMBER") and not os.environ.get("TWILIO_MESSAGING_SERVICE_SID"):
        raise ImproperlyConfigured("TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID must be set in production "
                                   "when SMS_SIGNIN_ENABLED is on")
else:
    ACCOUNT_LOGIN_METHODS = {"email"}
    ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
    SILENCED_SYSTEM_CHECKS: list[str] = []
DEV_OUTBOX_ENABLED = False

# Persistent, health-checked database connections (a new connection per request costs ~10% of a request).
# With the pool on (DATABASE_POOL_MAX_SIZE, base.py) the pool keeps the connections instead (CONN_MAX_AGE = 0).
if "pool" not in DATABASES["default"].get("OPTIONS", {}):  # noqa: F405
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)  # noqa: F405
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True  # noqa: F405

# Mandatory email verification needs an email at sign-up (allauth); with sign-up by phone, email is optional
# and verification "optional": allauth still only trusts verified addresses for linking and resets.
ACCOUNT_EMAIL_VERIFICATION = "optional" if SMS_SIGNIN_ENABLED else "mandatory"
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
