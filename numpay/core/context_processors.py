"""Template context shared by every page."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def numpay(request: HttpRequest) -> dict[str, object]:
    """``is_localnet`` (shows the dev faucet) and the cluster name."""
    return {"is_localnet": settings.SOLANA_CLUSTER == "localnet", "solana_cluster": settings.SOLANA_CLUSTER}
