"""Admin for payments: view-only (no Save, no Delete: money records are never edited here), amounts once in
token units, attempts and events inline, an audited "re-check status", the policy decision; spending policies
(amounts entered in token units)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils.html import format_html, format_html_join

from numpay.core.errors import ApplicationError
from numpay.core.money import format_amount, parse_amount

from .models import Payment, PaymentApproval, PaymentAttempt, PaymentEvent, SpendingPolicy, WalletProtection


class PaymentAttemptInline(admin.TabularInline):
    """Attempts of a payment: read-only; the signed bytes are not shown (they are public once sent, but
    add nothing an operator needs)."""

    model = PaymentAttempt
    extra = 0
    can_delete = False
    fields = ("number", "signature", "blockhash", "last_valid_block_height", "status", "send_count", "last_sent_at",
              "created_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):  # noqa: ANN001, ANN201
        return False


class PaymentEventInline(admin.TabularInline):
    model = PaymentEvent
    extra = 0
    can_delete = False
    fields = ("at", "from_status", "to_status", "note")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):  # noqa: ANN001, ANN201
        return False


class PaymentApprovalInline(admin.TabularInline):
    """The passkey step-ups of a payment: which passkey approved, when, its counter; challenges are stored only
    as hashes, assertions not shown."""

    model = PaymentApproval
    extra = 0
    can_delete = False
    fields = ("created_at", "expires_at", "used_at", "authenticator", "sign_count", "onchain_nonce")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):  # noqa: ANN001, ANN201
        return False


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    """Payments, view-only; "Re-check status" asks the chain now (audited)."""

    list_display = ("id", "sender", "recipient_input", "token", "display_amount", "status", "created_at",
                    "confirmed_at")
    list_filter = ("status", "token")
    search_fields = ("id", "sender__email", "recipient_input", "recipient_address", "signature")
    date_hierarchy = "created_at"
    inlines = [PaymentAttemptInline, PaymentApprovalInline, PaymentEventInline]
    actions = ["recheck_status"]
    #: base-unit columns are shown once, in token units (``display_amount``, ``display_network_fee``)
    readonly_fields = [f.name for f in Payment._meta.fields if f.name not in ("amount", "network_fee",
                                                                             "request_fingerprint")]
    readonly_fields[readonly_fields.index("token") + 1:0] = ["display_amount", "display_network_fee"]
    readonly_fields.append("policy_checks")
    exclude = ("request_fingerprint", "amount", "network_fee")

    def has_add_permission(self, request):  # noqa: ANN001, ANN201
        return False

    def has_change_permission(self, request, obj=None):  # noqa: ANN001, ANN201
        return False  # view-only: no Save button; the state machine is the only writer of a payment

    def has_delete_permission(self, request, obj=None):  # noqa: ANN001, ANN201
        return False

    @admin.display(description="Policy checks")
    def policy_checks(self, obj: Payment) -> str:
        decision = obj.policy_decision or {}
        if not decision:
            return "-"
        rows = [(c["rule"], c["policy"], c["limit"], c["used"], c["outcome"]) for c in decision.get("checks", [])]
        return format_html("{}<div>outcome: {}; passkey approvals required: {}</div>",
                           format_html_join("", "<div>{} ({}): limit {}, used {} &rarr; {}</div>", rows),
                           decision.get("outcome"), decision.get("approvals_required"))

    @admin.display(description="Amount")
    def display_amount(self, obj: Payment) -> str:
        return f"{format_amount(obj.amount, decimals=obj.token.decimals)} {obj.token.symbol}"

    @admin.display(description="Network fee (paid by the sender)")
    def display_network_fee(self, obj: Payment) -> str:
        return f"{format_amount(obj.network_fee, decimals=obj.token.decimals)} {obj.token.symbol}"

    @admin.action(description="Re-check status on the chain")
    def recheck_status(self, request, queryset):  # noqa: ANN001, ANN201
        from django.contrib.admin.models import CHANGE, LogEntry

        from relayer.tasks import outbox_check

        open_payments = list(queryset.exclude(status__in=Payment.TERMINAL_STATUSES))
        for payment in open_payments:
            outbox_check.delay("payment", str(payment.pk))
        if open_payments:
            LogEntry.objects.log_actions(user_id=request.user.pk, queryset=open_payments, action_flag=CHANGE,
                                         change_message="Re-check status requested")
        count = len(open_payments)
        self.message_user(request, f"Asked the chain about {count} open payment(s).")


class SpendingPolicyForm(forms.ModelForm):
    """Amount limits are typed in token units (``"100"`` USDC) and stored in base units."""

    class Meta:
        model = SpendingPolicy
        fields = ("name", "scope", "group", "user", "token", "is_active", "per_transaction_cap", "daily_cap",
                  "weekly_cap", "monthly_cap", "passkey_above", "two_passkeys_above", "max_payments_per_hour",
                  "allowlist_only", "allowed_recipients")

    def __init__(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN204
        super().__init__(*args, **kwargs)
        instance = self.instance
        for name in SpendingPolicy.AMOUNT_FIELDS:
            self.fields[name] = forms.CharField(
                required=False, max_length=40, label=SpendingPolicy._meta.get_field(name).verbose_name.capitalize(),
                help_text="In token units, e.g. 100 or 12.5; empty = no limit.")
            value = getattr(instance, name, None)
            if instance.pk and value is not None and instance.token_id:
                self.initial[name] = format_amount(value, decimals=instance.token.decimals)

    def clean(self):  # noqa: ANN201
        data = super().clean()
        token = data.get("token")
        for name in SpendingPolicy.AMOUNT_FIELDS:
            raw = (data.get(name) or "").strip()
            if not raw:
                data[name] = None
                continue
            if token is None:
                self.add_error(name, "Amount limits need a token.")
                continue
            try:
                data[name] = parse_amount(raw, decimals=token.decimals)
            except ApplicationError as exc:
                self.add_error(name, exc.message)
        return data


@admin.register(SpendingPolicy)
class SpendingPolicyAdmin(admin.ModelAdmin):
    """Spending policies: the default, per group (tier) or per user; users' own limits are listed too."""

    form = SpendingPolicyForm
    list_display = ("name", "scope", "group", "user", "token", "is_active", "limits_summary", "updated_at")
    list_filter = ("scope", "is_active", "token", "group")
    search_fields = ("name", "user__email", "group__name")
    raw_id_fields = ("user",)

    @admin.display(description="Limits")
    def limits_summary(self, obj: SpendingPolicy) -> str:
        parts = []
        for name in SpendingPolicy.AMOUNT_FIELDS:
            value = getattr(obj, name)
            if value is not None and obj.token_id:
                parts.append(f"{name.replace('_', ' ')} {format_amount(value, decimals=obj.token.decimals)}")
        if obj.max_payments_per_hour is not None:
            parts.append(f"{obj.max_payments_per_hour}/hour")
        if obj.allowlist_only:
            parts.append("allowlist only")
        return ", ".join(parts) or "-"


@admin.register(WalletProtection)
class WalletProtectionAdmin(admin.ModelAdmin):
    """Wallets' switches to protected mode (passkey owner on-chain, custody key capped): view-only."""

    list_display = ("wallet", "status", "authenticator", "signature", "created_at", "confirmed_at")
    list_filter = ("status",)
    search_fields = ("wallet__address", "wallet__user__email", "signature")
    fields = ("wallet", "authenticator", "status", "limits", "signature", "slot", "error_message", "expires_at",
              "created_at", "confirmed_at")
    readonly_fields = fields

    def has_add_permission(self, request):  # noqa: ANN001, ANN201
        return False

    def has_change_permission(self, request, obj=None):  # noqa: ANN001, ANN201
        return False

    def has_delete_permission(self, request, obj=None):  # noqa: ANN001, ANN201
        return False
