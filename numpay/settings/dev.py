"""Development settings: `make run` on one machine (SQLite, SQLite broker, localnet)."""

from __future__ import annotations

import base64
import hashlib

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="dev-only-insecure-secret-key-change-me-0123456789")
if not NUMPAY_KEKS:  # noqa: F405
    # A fixed, public development KEK: dev data protects nothing. Production refuses to start without one.
    _dev_kek = base64.b64encode(hashlib.sha256(b"numpay-dev-kek").digest()).decode()
    NUMPAY_KEKS = f"dev-1:{_dev_kek}"
    NUMPAY_KEK_CURRENT_ID = "dev-1"
