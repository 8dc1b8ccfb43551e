"""The pattern of an app's typed settings (``<app>/app_settings.py``, as django-allauth does it).

A setting is read live on every access: first from Django settings (so tests and settings modules can
override it), else from the environment variable of the same name (django-environ casting), else the
default. The app's ``app_settings.py`` is the one place that names, documents and defaults its settings;
its ``checks.py`` holds the system checks of values that must agree.
"""

from __future__ import annotations

from typing import Any

import environ

_env = environ.Env()
_MISSING = object()


def setting(name: str, default: Any, *, cast: type = str) -> Any:
    """The value of setting ``name``: Django settings, else env var ``name`` cast to ``cast``, else ``default``.

    :param cast: ``str``, ``int``, ``float`` or ``bool`` (how the environment variable is parsed).
    """
    from django.conf import settings

    value = getattr(settings, name, _MISSING)
    if value is not _MISSING:
        return value
    reader = {str: _env.str, int: _env.int, float: _env.float, bool: _env.bool}[cast]
    return reader(name, default=default)
