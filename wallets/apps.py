from __future__ import annotations

from django.apps import AppConfig


class WalletsConfig(AppConfig):
    """Wallets, key custody, tokens, balances, payments."""

    name = "wallets"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from numpay.core import rowcache

        from . import checks  # noqa: F401 - registers the system checks
        from .models import TOKENS_CACHE, Token

        # token_get's cache: any write to a token (admin, registry) is seen at once by every process
        for signal in (post_save, post_delete):
            signal.connect(rowcache.invalidator(TOKENS_CACHE), sender=Token, weak=False,
                           dispatch_uid=f"numpay_tokens_cache_{signal is post_save}")
