"""System checks for settings that must agree (run by ``manage.py check`` and at server start)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register  # noqa: A004


@register(Tags.security, deploy=False)
def custody_configured(app_configs: Any, **kwargs: Any) -> list[Error | Warning]:
    """The KEK provider loads (DESIGN.md "Key custody")."""
    from wallets.custody import CustodyError, get_kek_provider

    try:
        get_kek_provider()
    except (CustodyError, ImportError) as exc:
        return [Error(f"Key custody is misconfigured: {exc}", id="numpay.E001",
                      hint="Set NUMPAY_KEKS='id:base64(32 bytes)' and NUMPAY_KEK_CURRENT_ID=id.")]
    return []


@register()
def shared_cache_and_proxies(app_configs: Any, **kwargs: Any) -> list[Error | Warning]:
    """The cache is shared between processes (rate limits, single-flight locks; DESIGN.md "Processes"), and
    allauth and DRF count the same number of trusted proxies when they read client IPs."""
    problems: list[Error | Warning] = []
    backend = settings.CACHES["default"]["BACKEND"]
    if backend.endswith(("LocMemCache", "DummyCache")):
        problems.append(Warning(f"The cache ({backend}) is private to each process: rate limits and single-flight "
                                "locks do not hold across the web process, the worker and beat.", id="numpay.W003",
                                hint="Use REDIS_URL, or leave it unset for the embedded file cache."))
    allauth_count = getattr(settings, "ALLAUTH_TRUSTED_PROXY_COUNT", 0)
    drf_count = settings.REST_FRAMEWORK.get("NUM_PROXIES")
    if drf_count != allauth_count:
        problems.append(Error(f"REST_FRAMEWORK['NUM_PROXIES'] ({drf_count}) differs from ALLAUTH_TRUSTED_PROXY_COUNT "
                              f"({allauth_count}): the API and sign-in would rate-limit different addresses.",
                              id="numpay.E004"))
    return problems


@register(Tags.staticfiles, deploy=True)
def static_files_collected(app_configs: Any, **kwargs: Any) -> list[Error]:
    """With the manifest storage (production), ``collectstatic`` has run: without its manifest every page
    that links a static file fails."""
    from django.contrib.staticfiles.storage import ManifestFilesMixin
    from django.core.files.storage import storages

    storage = storages["staticfiles"]
    if isinstance(storage, ManifestFilesMixin) and not storage.exists(storage.manifest_name):
        return [Error(f"Static files are not collected ({storage.manifest_name} is missing in STATIC_ROOT).",
                      id="numpay.E005", hint="Run `manage.py collectstatic --noinput` at each deploy.")]
    return []
