"""Settings for ``bench/payments.py``: the development settings (all components chosen by environment
variables, as in production) plus the bench-only baseline app, and without allauth's signup rate limit
(the bench signs up dozens of users from one IP in a few seconds; the limit applies to signup/login only,
not to anything measured). Everything else comes from the environment the bench sets.
"""

from __future__ import annotations

from numpay.settings.dev import *  # noqa: F403
from numpay.settings.dev import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "bench.baseline"]
ROOT_URLCONF = "bench.baseline.root_urls"
ACCOUNT_RATE_LIMITS = False
