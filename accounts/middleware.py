"""Content-Security-Policy for social sign-in: a provider button is a form posted to Numpay that redirects to
the provider, and browsers apply ``form-action`` to that redirect too, so the configured providers'
authorization origins join ``form-action`` (nothing else is widened)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponse

#: Where each provider's authorization endpoint lives (allauth's providers; OpenID Connect: its server URL).
AUTHORIZATION_ORIGINS = {
    "google": "https://accounts.google.com",
    "github": "https://github.com",
    "apple": "https://appleid.apple.com",
}


def social_form_action_origins() -> list[str]:
    """Origins of the providers configured in ``SOCIALACCOUNT_PROVIDERS`` (Numpay configures providers from the
    environment only, never in the database), e.g. ``["https://github.com"]``. No database query."""
    from django.conf import settings

    origins: list[str] = []
    for provider, config in getattr(settings, "SOCIALACCOUNT_PROVIDERS", {}).items():
        apps = config.get("APPS") or ([config["APP"]] if config.get("APP") else [])
        for app in apps:
            if provider == "openid_connect":
                url = urlsplit((app.get("settings") or {}).get("server_url", ""))
                origin = f"{url.scheme}://{url.netloc}" if url.scheme and url.netloc else ""
            else:
                origin = AUTHORIZATION_ORIGINS.get(provider, "")
            if origin and origin not in origins:
                origins.append(origin)
    return origins


class SocialFormActionMiddleware:
    """Adds :func:`social_form_action_origins` to the page's CSP ``form-action`` (django-csp's update hook)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.get("Content-Type", "").startswith("text/html") and (origins := social_form_action_origins()):
            update = dict(getattr(response, "_csp_update", None) or {})
            update["form-action"] = [*update.get("form-action", []), *origins]
            response._csp_update = update  # type: ignore[attr-defined]
        return response
