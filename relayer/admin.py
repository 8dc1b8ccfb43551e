"""Admin for the relayer: the fee payer's balance and the sponsorship ledger (read-only).

Never shows key material: the fee payer is identified by its public address only. Money fields are
lamports and read-only; the one action ("check balance now") only reads the chain and is recorded in
the admin log.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse

from numpay.core.errors import ApplicationError
from numpay.core.money import format_amount
from numpay.core.solana.programs import SOL_DECIMALS

from . import services
from .models import FeePayer, SponsorshipCharge, SponsorshipDay
from .selectors import sponsorship_total_today


class ReadOnlyAdmin(admin.ModelAdmin):
    """View-only: rows are written by services, never by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(FeePayer)
class FeePayerAdmin(ReadOnlyAdmin):
    """The relayer fee payer(s): last balance (SOL and lamports), last check, today's sponsorship spend."""

    list_display = (
        "address",
        "balance_sol",
        "last_balance_lamports",
        "last_checked_at",
        "is_below_threshold",
        "sponsored_today_lamports",
    )
    list_filter = ("is_below_threshold",)
    fields = list_display + ("created_at",)
    readonly_fields = fields
    actions = ("check_balance_now",)

    @admin.display(description="Balance (SOL)")
    def balance_sol(self, obj: FeePayer) -> str:
        if obj.last_balance_lamports is None:
            return "—"
        return format_amount(obj.last_balance_lamports, decimals=SOL_DECIMALS)

    @admin.display(description="Sponsored today, all users (lamports)")
    def sponsored_today_lamports(self, obj: FeePayer) -> int:
        return sponsorship_total_today()

    def has_check_balance_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("relayer.view_feepayer")

    @admin.action(description="Check balance now", permissions=["check_balance"])
    def check_balance_now(self, request: HttpRequest, queryset: QuerySet[FeePayer] | None = None) -> None:
        self._check(request)

    def _check(self, request: HttpRequest) -> None:
        try:
            fee_payer = services.fee_payer_balance_check()
        except ApplicationError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)
            return
        lamports = fee_payer.last_balance_lamports or 0
        text = f"Balance checked: {format_amount(lamports, decimals=SOL_DECIMALS)} SOL ({lamports} lamports)."
        self.log_change(request, fee_payer, text)
        level = messages.WARNING if fee_payer.is_below_threshold else messages.SUCCESS
        self.message_user(request, text + (" Below the alert threshold." if fee_payer.is_below_threshold else ""), level)

    def check_view(self, request: HttpRequest) -> HttpResponseRedirect | HttpResponseNotAllowed:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_check_balance_permission(request):
            self.message_user(request, "You may not check the fee payer balance.", level=messages.ERROR)
        else:
            self._check(request)
        return HttpResponseRedirect(reverse("admin:relayer_feepayer_changelist"))

    def get_urls(self):  # noqa: ANN201
        urls = [path("check/", self.admin_site.admin_view(self.check_view), name="relayer_feepayer_check")]
        return urls + super().get_urls()


@admin.register(SponsorshipDay)
class SponsorshipDayAdmin(ReadOnlyAdmin):
    """Per-user daily sponsorship totals (reserved plus settled, lamports)."""

    list_display = ("day", "user", "reserved_lamports", "updated_at")
    list_filter = ("day",)
    search_fields = ("user__email",)
    date_hierarchy = "day"
    list_select_related = ("user",)


@admin.register(SponsorshipCharge)
class SponsorshipChargeAdmin(ReadOnlyAdmin):
    """The sponsorship ledger: one row per sponsored payment (reference = payment id)."""

    list_display = ("reference", "user", "day", "lamports", "estimated_lamports", "status", "created_at", "updated_at")
    list_filter = ("status", "day")
    search_fields = ("reference", "user__email")
    date_hierarchy = "day"
    list_select_related = ("user",)
