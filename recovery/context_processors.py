"""The in-app banner: a signed-in owner sees at once that someone is recovering their account."""

from __future__ import annotations

from typing import Any

from .selectors import open_request_of


def recovery_banner(request: Any) -> dict[str, Any]:
    """``{"recovery_banner": RecoveryRequest | None}`` for ``templates/recovery/_banner.html``."""
    return {"recovery_banner": open_request_of(user=getattr(request, "user", None))}
