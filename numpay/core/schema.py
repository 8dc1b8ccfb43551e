"""OpenAPI (drf-spectacular) extensions: how clients authenticate."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class SessionTokenScheme(OpenApiAuthenticationExtension):
    """allauth headless app session token in the ``X-Session-Token`` header."""

    target_class = "numpay.core.authentication.SessionTokenAuthentication"
    name = "sessionToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "header", "name": "X-Session-Token",
                "description": "From POST /_allauth/app/v1/auth/login or /signup (meta.session_token)."}
