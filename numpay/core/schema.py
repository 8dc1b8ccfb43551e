"""OpenAPI (drf-spectacular) extensions: how clients authenticate, and errors as problem details."""

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


def problem_content_types(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: every documented error (4xx/5xx) is ``application/problem+json``,
    which is what the API sends (:func:`numpay.core.api.problem_exception_handler`), never ``application/json``.
    """
    from .api import PROBLEM_CONTENT_TYPE

    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content")
                if not status.isdigit() or int(status) < 400 or not content:
                    continue
                schemas = [value for media_type, value in content.items() if "json" in media_type]
                if schemas and set(content) != {PROBLEM_CONTENT_TYPE}:
                    response["content"] = {PROBLEM_CONTENT_TYPE: content.get(PROBLEM_CONTENT_TYPE, schemas[0])}
    return result
