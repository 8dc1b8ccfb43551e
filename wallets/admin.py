"""Admin for wallets and tokens. Never shows key material, not even ciphertext."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from numpay.core.errors import ApplicationError
from numpay.core.money import format_amount

from .models import IncomingTransfer, Token, Wallet
from .selectors import wallet_balances, wallet_rules


@admin.register(Wallet)
class WalletAdmin(admin.ModelAdmin):
    """Wallets with live chain balances on the change page."""

    list_display = ("address", "user", "kind", "custody", "status", "created_at")
    list_filter = ("kind", "custody", "status")
    search_fields = ("address", "previous_address", "claim_email", "user__email")
    readonly_fields = ("id", "user", "address", "kind", "authority", "config_address", "previous_address",
                       "claim_email", "custody", "created_at", "live_balances", "onchain_rules")
    fields = ("id", "user", "address", "kind", "authority", "config_address", "previous_address", "claim_email",
              "custody", "status", "created_at", "live_balances", "onchain_rules")

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

    @admin.display(description="On-chain rules (live, read-only)")
    def onchain_rules(self, obj: Wallet) -> str:
        """The smart wallet's authorities and limits as the chain holds them (changed only on-chain)."""
        try:
            rules = wallet_rules(wallet=obj)
        except ApplicationError as exc:
            return exc.message
        if rules is None:
            return "— (keypair wallet)"
        header = format_html("<div>program {} · config {} · {}</div>", rules.program_id, rules.config_address,
                             f"nonce {rules.nonce}" if rules.is_created else "not created yet (rules to be written)")
        lines = format_html_join("", "<div>{} {} [{}]: {}</div>", (
            ("custody key" if a.is_custody_key else "key", a.key, ", ".join(a.permissions),
             "; ".join(f"{limit.token} {limit.ui_per_transaction}/payment, {limit.ui_per_period}/"
                       f"{limit.period_seconds}s, spent {limit.ui_spent}" for limit in a.limits) or "no limits")
            for a in rules.authorities))
        return header + lines


def token_in_use(token: Token) -> bool:
    """Whether money records point at ``token`` (payments or incoming transfers): then what identifies it on
    chain cannot change and it cannot be deleted."""
    return token.payments.exists() or IncomingTransfer.objects.filter(token=token).exists()


@admin.register(Token)
class TokenAdmin(admin.ModelAdmin):
    """Tokens. Once in use, the on-chain identity (cluster, symbol, mint, decimals, program) is read-only and the
    token cannot be deleted (deactivate it instead); the account creation fee and the display stay editable."""

    list_display = ("symbol", "name", "cluster", "mint", "decimals", "is_native", "is_active")
    list_filter = ("cluster", "is_active")
    IDENTITY = ("cluster", "symbol", "mint", "decimals", "is_native", "token_program")

    def get_readonly_fields(self, request, obj=None):  # noqa: ANN001, ANN201
        return self.IDENTITY if obj is not None and token_in_use(obj) else ()

    def has_delete_permission(self, request, obj=None):  # noqa: ANN001, ANN201
        return obj is None or not token_in_use(obj)


@admin.register(IncomingTransfer)
class IncomingTransferAdmin(admin.ModelAdmin):
    """Money that arrived from outside (deposits, faucet top-ups): view-only, amounts in token units."""

    list_display = ("wallet", "display_amount", "from_address", "signature", "slot", "created_at")
    fields = ("wallet", "display_amount", "from_address", "signature", "slot", "created_at")
    readonly_fields = fields
    list_filter = ("token",)
    search_fields = ("signature", "wallet__address", "from_address")

    def has_add_permission(self, request):  # noqa: ANN001, ANN201
        return False

    def has_change_permission(self, request, obj=None):  # noqa: ANN001, ANN201
        return False

    def has_delete_permission(self, request, obj=None):  # noqa: ANN001, ANN201
        return False

    @admin.display(description="Amount")
    def display_amount(self, obj: IncomingTransfer) -> str:
        return f"{format_amount(obj.amount, decimals=obj.token.decimals)} {obj.token.symbol}"
