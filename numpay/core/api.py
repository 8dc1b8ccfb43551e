"""DRF plumbing: problem-details errors (RFC 9457) with a stable ``code``, cursor pagination."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import exceptions, pagination, serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler

from .errors import ApplicationError

PROBLEM_CONTENT_TYPE = "application/problem+json"

_DRF_CODES = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.Throttled: "throttled",
    exceptions.ParseError: "malformed_request",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.ValidationError: "invalid_request",
}


def problem_response(*, status: int, code: str, title: str, detail: str, extra: dict[str, Any] | None = None) -> Response:
    """A problem-details response: ``{type, title, status, detail, code, ...extra}``."""
    body: dict[str, Any] = {"type": f"https://numpay.dev/errors/{code}", "title": title, "status": status,
                            "detail": detail, "code": code}
    body.update(extra or {})
    return Response(body, status=status, content_type=PROBLEM_CONTENT_TYPE)


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """The one DRF exception handler: ApplicationError and DRF errors -> problem details JSON."""
    if isinstance(exc, ApplicationError):
        return problem_response(status=exc.status, code=exc.code, title=exc.code.replace("_", " ").capitalize(),
                                detail=exc.message, extra=exc.extra)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    code = next((value for cls, value in _DRF_CODES.items() if isinstance(exc, cls)), "error")
    extra: dict[str, Any] = {}
    if isinstance(exc, exceptions.ValidationError):
        extra["errors"] = exc.detail
        detail = "The request has invalid fields."
    else:
        detail = str(exc.detail)
    problem = problem_response(status=response.status_code, code=code, title=code.replace("_", " ").capitalize(),
                               detail=detail, extra=extra)
    for header, value in response.items():
        if header.lower() in {"retry-after", "www-authenticate", "allow"}:
            problem[header] = value
    return problem


ProblemSerializer = inline_serializer(
    name="Problem",
    fields={
        "type": serializers.CharField(),
        "title": serializers.CharField(),
        "status": serializers.IntegerField(),
        "detail": serializers.CharField(),
        "code": serializers.CharField(help_text="Stable machine-readable error code."),
    },
)


def problem(description: str) -> OpenApiResponse:
    """An OpenAPI response entry for a problem-details error listing its codes in ``description``."""
    return OpenApiResponse(response=ProblemSerializer, description=description)


class CursorPagination(pagination.CursorPagination):
    """Newest first, opaque cursors (stable under inserts)."""

    ordering = "-created_at"
    page_size = 25
    max_page_size = 100
    page_size_query_param = "page_size"

