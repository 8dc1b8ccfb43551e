"""WSGI entry point (gunicorn numpay.wsgi).

Refuses to start when static files are not collected (manifest storage in production): otherwise every
page linking a static file would answer 500 (run ``manage.py collectstatic --noinput`` at each deploy).
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "numpay.settings.production")
application = get_wsgi_application()

from numpay.core.checks import static_files_collected  # noqa: E402 - needs the app registry loaded above

for _problem in static_files_collected(None):
    raise ImproperlyConfigured(f"{_problem.msg} {_problem.hint}")
