"""DRF plumbing: problem-details errors (RFC 9457) with a registered ``code``, cursor pagination, and the
OpenAPI description of errors (from :data:`numpay.core.errors.REGISTRY`). The guarded JSON parser is in
:mod:`numpay.core.parsers` (DRF imports parsers while defining ``APIView``: no cycle through here)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, pagination
from rest_framework.response import Response
from rest_framework.views import exception_handler

from .errors import REGISTRY, ApplicationError, codes_with_status, problem_body

PROBLEM_CONTENT_TYPE = "application/problem+json"

_DRF_CODES: dict[type[exceptions.APIException], str] = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.Throttled: "throttled",
    exceptions.ParseError: "malformed_request",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.ValidationError: "invalid_request",
}


def problem_response(error: ApplicationError, *, headers: dict[str, str] | None = None) -> Response:
    """A DRF problem-details response for ``error``."""
    return Response(problem_body(error), status=error.status, content_type=PROBLEM_CONTENT_TYPE, headers=headers)


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """The one DRF exception handler: ApplicationError and DRF errors -> problem details JSON with a
    registered ``code``."""
    if isinstance(exc, ApplicationError):
        return problem_response(exc)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        return problem_response(ApplicationError("request_too_large"))
    response = exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    code = next((value for cls, value in _DRF_CODES.items() if isinstance(exc, cls)), None)
    if code is None or REGISTRY[code].status != response.status_code:
        code = "server_error" if response.status_code >= 500 else "invalid_request"
    extra: dict[str, Any] = {}
    message: str | None
    if isinstance(exc, exceptions.ValidationError):
        extra["errors"] = exc.detail
        message = None
    else:
        message = str(exc.detail)
    error = ApplicationError(code, message, extra=extra)
    headers = {header: value for header, value in response.items()
               if header.lower() in {"retry-after", "www-authenticate", "allow"}}
    return problem_response(error, headers=headers)


# --- OpenAPI: errors as documented responses, their codes from the registry ---

def problem_schema(codes: list[str]) -> dict[str, Any]:
    """The JSON schema of a problem-details body whose ``code`` is one of ``codes``."""
    return {
        "type": "object",
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": {"type": "string", "format": "uri"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string", "description": "A plain-words sentence for people."},
            "code": {"type": "string", "enum": codes, "description": "Stable machine-readable error code."},
        },
        "additionalProperties": True,
    }


#: Codes every operation can answer with (authentication, throttling, content negotiation).
COMMON_CODES = ("not_authenticated", "authentication_failed", "throttled", "not_acceptable")
#: Codes every operation with a JSON request body can answer with, before the view runs.
BODY_CODES = ("malformed_request", "request_too_deep", "request_too_large", "unsupported_media_type")


def problems(*codes: str, body: bool = False, authenticated: bool = True) -> dict[Any, OpenApiResponse]:
    """OpenAPI error responses of one operation: one ``application/problem+json`` response per HTTP
    status, its ``code`` an enum of ``codes`` (plus the common ones) looked up in the registry.

    :param body: the operation takes a JSON body (adds :data:`BODY_CODES`).
    :param authenticated: the operation needs a signed-in user (adds the 401 codes).
    :returns: ``{(status, "application/problem+json"): OpenApiResponse}`` for ``extend_schema(responses=...)``.
    :raises LookupError: a code is not registered.
    """
    common = [c for c in COMMON_CODES if authenticated or REGISTRY[c].status != 401]
    all_codes = [*codes, *(BODY_CODES if body else ()), *common]
    responses: dict[Any, OpenApiResponse] = {}
    for status, grouped in codes_with_status(*all_codes).items():
        lines = "; ".join(f"`{code}`: {REGISTRY[code].title}" for code in grouped)
        responses[(status, PROBLEM_CONTENT_TYPE)] = OpenApiResponse(response=problem_schema(grouped),
                                                                    description=lines)
    return responses


class CursorPagination(pagination.CursorPagination):
    """Newest first, opaque cursors (stable under inserts)."""

    ordering = "-created_at"
    page_size = 25
    max_page_size = 100
    page_size_query_param = "page_size"

