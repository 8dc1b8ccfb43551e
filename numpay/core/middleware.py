"""Middleware: the one place pages handle ``ApplicationError``, and the JSON body guard for views that
are not DRF's (allauth headless).

- :class:`ApplicationErrorMiddleware` renders an ``ApplicationError`` escaping a page view as a friendly
  page with the error's message and registered status (``templates/error.html``). DRF views never get
  here: their exception handler (:func:`numpay.core.api.problem_exception_handler`) answers first.
- :class:`JsonBodyGuardMiddleware` refuses, before the view runs, a JSON body (for allauth headless,
  which parses every body as JSON, any body) that is over
  ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (``request_too_large``) or nested too deeply (``request_too_deep``;
  an HTML 500 from a ``RecursionError`` before) with a 400 problem-details response. DRF views are
  skipped: their parser (:class:`numpay.core.parsers.GuardedJSONParser`) does the same checks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from .api import PROBLEM_CONTENT_TYPE
from .errors import ApplicationError, problem_body
from .parsers import json_body_parse

logger = logging.getLogger(__name__)


class ApplicationErrorMiddleware:
    """Pages: an ``ApplicationError`` becomes ``error.html`` with its message and status."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, ApplicationError):
            return None
        logger.info("Page %s answered %s %s", request.path, exception.status, exception.code)
        return render(request, "error.html", {"error": exception}, status=exception.status)


def _is_json(request: HttpRequest) -> bool:
    content_type = request.content_type or ""
    return content_type == "application/json" or content_type.endswith("+json")


class JsonBodyGuardMiddleware:
    """Non-DRF views taking JSON (allauth headless): refuse too large or too deep bodies with 400."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any) -> HttpResponse | None:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return None
        if getattr(view_func, "cls", None) is not None:  # a DRF view: GuardedJSONParser checks its body
            return None
        # allauth headless parses every body as JSON whatever its Content-Type
        if not _is_json(request) and not getattr(view_func, "__module__", "").startswith("allauth.headless."):
            return None
        try:
            body = request.body
            if body:
                json_body_parse(body)
        except RequestDataTooBig:
            return _problem(ApplicationError("request_too_large"))
        except ApplicationError as exc:
            return _problem(exc)
        except ValueError:
            return None  # not JSON: the view answers that its own way
        return None


def _problem(error: ApplicationError) -> JsonResponse:
    return JsonResponse(problem_body(error), status=error.status, content_type=PROBLEM_CONTENT_TYPE)
