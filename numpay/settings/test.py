"""Test settings: the dev components, or PostgreSQL/Redis when DATABASE_URL etc. are set."""

from __future__ import annotations

import base64
import hashlib

from .base import *  # noqa: F403
from .base import env

DEBUG = False
SECRET_KEY = "test-only-secret-key-0123456789-0123456789-0123456789"  # noqa: S105
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
ACCOUNT_EMAIL_VERIFICATION = "optional"
ACCOUNT_RATE_LIMITS = False
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {"user": "100000/min", "anon": "100000/min"}  # noqa: F405
API_THROTTLE_FAUCET = "100000/min"
SOLANA_RPC_MAX_RETRIES = 6
# The balance cache stays at its normal value (wallets.app_settings, 2 s): tests prove read-your-writes.
if not REDIS_URL:  # noqa: F405
    # The embedded cross-process cache, in a directory of its own (never the dev server's var/cache).
    CACHES["default"]["LOCATION"] = env.str("CACHE_DIR", default=str(VAR_DIR / "cache-test"))  # noqa: F405
if not NUMPAY_KEKS:  # noqa: F405
    _test_kek = base64.b64encode(hashlib.sha256(b"numpay-test-kek").digest()).decode()
    NUMPAY_KEKS = f"test-1:{_test_kek}"
    NUMPAY_KEK_CURRENT_ID = "test-1"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=f"numpay-sqla+sqlite:///{VAR_DIR / 'broker-test.sqlite3'}")  # noqa: F405
