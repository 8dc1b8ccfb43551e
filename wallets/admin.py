"""Admin for wallets and tokens. Never shows key material, not even ciphertext."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html_join

from numpay.core.errors import ApplicationError

from .models import IncomingTransfer, Token, Wallet
from .selectors import wallet_balances


@admin.register(Wallet)
class WalletAdmin(admin.ModelAdmin):
    """Wallets with live chain balances on the change page."""

    list_display = ("address", "user", "custody", "status", "created_at")
    list_filter = ("custody", "status")
    search_fields = ("address", "user__email")
    readonly_fields = ("id", "user", "address", "custody", "created_at", "live_balances")
    fields = ("id", "user", "address", "custody", "status", "created_at", "live_balances")

    def has_add_permission(self, request):  # noqa: ANN001, ANN201
        return False  # wallets are provisioned by the signup service only

    def has_delete_permission(self, request, obj=None):  # noqa: ANN001, ANN201
        return False

    @admin.display(description="Balances (live from the chain)")
    def live_balances(self, obj: Wallet) -> str:
        try:
            balances = wallet_balances(wallet=obj)
        except ApplicationError as exc:
            return exc.message
        return format_html_join("", "<div>{} {}</div>", ((b.ui_amount, b.token) for b in balances)) or "—"


@admin.register(Token)
class TokenAdmin(admin.ModelAdmin):
    list_display = ("symbol", "name", "cluster", "mint", "decimals", "is_native", "is_active")
    list_filter = ("cluster", "is_active")


@admin.register(IncomingTransfer)
class IncomingTransferAdmin(admin.ModelAdmin):
    list_display = ("wallet", "token", "amount", "from_address", "signature", "created_at")
    readonly_fields = ("wallet", "token", "amount", "from_address", "signature", "slot", "created_at")
    search_fields = ("signature", "wallet__address", "from_address")

    def has_add_permission(self, request):  # noqa: ANN001, ANN201
        return False
