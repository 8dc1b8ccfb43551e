"""Fixtures of the tests/ folder: the test OpenID Connect provider (tests/oidc_support.py)."""

from __future__ import annotations

from tests.oidc_support import oidc_configured, oidc_provider  # noqa: F401
