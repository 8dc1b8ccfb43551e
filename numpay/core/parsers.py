"""Reading JSON request bodies safely: a size limit and a nesting limit, for DRF (:class:`GuardedJSONParser`)
and for views that are not DRF's (:class:`numpay.core.middleware.JsonBodyGuardMiddleware`).

Kept apart from :mod:`numpay.core.api`: DRF imports the parser classes while it defines ``APIView``.
"""

from __future__ import annotations

import codecs
import json
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import exceptions, parsers

from .errors import ApplicationError

#: Deepest nesting of arrays/objects accepted in a JSON request body (ours are 1-2 deep). Deeper bodies
#: are refused with ``request_too_deep`` before anything recursive (json, serializers, logging) sees them.
MAX_JSON_DEPTH = 32

def json_depth_exceeds(data: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether parsed JSON ``data`` nests arrays/objects more than ``limit`` deep (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > limit:
                return True
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def json_body_parse(raw: bytes | str) -> Any:
    """Parse a JSON request body, refusing what would break the server rather than the client.

    :returns: the parsed value.
    :raises ApplicationError: ``request_too_deep`` (nested more than :data:`MAX_JSON_DEPTH`, or deep
        enough to exhaust Python's recursion limit in the decoder).
    :raises ValueError: not JSON (the caller reports it its own way).
    """
    try:
        data = json.loads(raw)
    except RecursionError:
        raise ApplicationError("request_too_deep") from None
    if json_depth_exceeds(data):
        raise ApplicationError("request_too_deep")
    return data


def request_body_limit() -> int | None:
    """The largest request body accepted, in bytes (``DATA_UPLOAD_MAX_MEMORY_SIZE``; None = no limit)."""
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


class GuardedJSONParser(parsers.JSONParser):
    """DRF's JSON parser, plus the two refusals DRF lacks: bodies over ``DATA_UPLOAD_MAX_MEMORY_SIZE``
    (DRF streams the body without Django's check) -> ``request_too_large``, and bodies nested too deeply
    (a ``RecursionError`` in :mod:`json`, an HTML 500 before) -> ``request_too_deep``. Both are 400."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict[str, Any] | None = None) -> Any:
        parser_context = parser_context or {}
        request = parser_context.get("request")
        limit = request_body_limit()
        if request is not None and limit is not None:
            try:
                declared = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                declared = 0
            if declared > limit:
                raise ApplicationError("request_too_large")
        try:
            raw = stream.read(limit + 1) if limit is not None else stream.read()
        except RequestDataTooBig:
            raise ApplicationError("request_too_large") from None
        if limit is not None and len(raw) > limit:
            raise ApplicationError("request_too_large")
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json_body_parse(codecs.decode(raw, encoding))
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from exc


