"""Test settings: the dev components, or PostgreSQL/Redis when DATABASE_URL etc. are set."""

from __future__ import annotations

import base64
import hashlib

from .base import *  # noqa: F403

DEBUG = False
SECRET_KEY = "test-only-secret-key-0123456789-0123456789-0123456789"  # noqa: S105
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
ACCOUNT_EMAIL_VERIFICATION = "optional"
ACCOUNT_RATE_LIMITS = False
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {"user": "100000/min", "anon": "100000/min", "faucet": "100000/min"}  # noqa: F405
SOLANA_RPC_MAX_RETRIES = 6
SOLANA_BALANCE_CACHE_SECONDS = 0
if not NUMPAY_KEKS:  # noqa: F405
    _test_kek = base64.b64encode(hashlib.sha256(b"numpay-test-kek").digest()).decode()
    NUMPAY_KEKS = f"test-1:{_test_kek}"
    NUMPAY_KEK_CURRENT_ID = "test-1"
if CELERY_BROKER_URL.startswith("filesystem://"):  # noqa: F405
    # Tests get their own broker folder so a running `make run` never shares messages with them.
    _test_queue = VAR_DIR / "broker-test" / "queue"  # noqa: F405
    _test_queue.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {**CELERY_BROKER_TRANSPORT_OPTIONS,  # noqa: F405
                                       "data_folder_in": str(_test_queue), "data_folder_out": str(_test_queue)}
