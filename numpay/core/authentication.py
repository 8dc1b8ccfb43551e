"""API authentication classes (kept apart from the DRF view plumbing to avoid import cycles)."""

from __future__ import annotations

from typing import Any

from allauth.headless.contrib.rest_framework.authentication import XSessionTokenAuthentication


class SessionTokenAuthentication(XSessionTokenAuthentication):
    """allauth headless app sessions (``X-Session-Token``), answering 401 (not 403) when missing or wrong,
    so clients know to sign in again (RFC 9110 requires a ``WWW-Authenticate`` challenge with 401)."""

    def authenticate_header(self, request: Any) -> str:
        return 'Session-Token realm="api", header="X-Session-Token"'
