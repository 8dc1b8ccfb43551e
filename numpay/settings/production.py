"""Production settings: no defaults for secrets; refuse to start without them.

Required: DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS, DATABASE_URL, NUMPAY_KEKS + NUMPAY_KEK_CURRENT_ID
(or another NUMPAY_KEK_PROVIDER), and the relayer fee payer key (RELAYER_FEE_PAYER_KEYPAIR or
RELAYER_FEE_PAYER_KEYPAIR_PATH pointing at an existing file).
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
_require("DATABASE_URL")
if NUMPAY_KEK_PROVIDER == "wallets.custody.LocalKeyEncryptionKeyProvider":  # noqa: F405
    NUMPAY_KEKS = _require("NUMPAY_KEKS")
    NUMPAY_KEK_CURRENT_ID = _require("NUMPAY_KEK_CURRENT_ID")
if not os.environ.get("RELAYER_FEE_PAYER_KEYPAIR") and not os.environ.get("RELAYER_SIGNER_CLASS"):
    _path = _require("RELAYER_FEE_PAYER_KEYPAIR_PATH")
    if not os.path.exists(_path):
        raise ImproperlyConfigured("RELAYER_FEE_PAYER_KEYPAIR_PATH does not point at a file")

# Persistent, health-checked database connections (a new connection per request costs ~10% of a request).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)  # noqa: F405
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True  # noqa: F405

ACCOUNT_EMAIL_VERIFICATION = "mandatory"
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
