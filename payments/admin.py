"""Admin for payments: view-only (no Save, no Delete: money records are never edited here), amounts once in
token units, attempts and events inline, an audited "re-check status"."""

from __future__ import annotations

from django.contrib import admin

from numpay.core.money import format_amount

from .models import Payment, PaymentAttempt, PaymentEvent


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


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    """Payments, view-only; "Re-check status" asks the chain now (audited)."""

    list_display = ("id", "sender", "recipient_input", "token", "display_amount", "status", "created_at",
                    "confirmed_at")
    list_filter = ("status", "token")
    search_fields = ("id", "sender__email", "recipient_input", "recipient_address", "signature")
    date_hierarchy = "created_at"
    inlines = [PaymentAttemptInline, PaymentEventInline]
    actions = ["recheck_status"]
    #: base-unit columns are shown once, in token units (``display_amount``, ``display_network_fee``)
    readonly_fields = [f.name for f in Payment._meta.fields if f.name not in ("amount", "network_fee",
                                                                             "request_fingerprint")]
    readonly_fields[readonly_fields.index("token") + 1:0] = ["display_amount", "display_network_fee"]
    exclude = ("request_fingerprint", "amount", "network_fee")

    def has_add_permission(self, request):  # noqa: ANN001, ANN201
        return False

    def has_change_permission(self, request, obj=None):  # noqa: ANN001, ANN201
        return False  # view-only: no Save button; the state machine is the only writer of a payment

    def has_delete_permission(self, request, obj=None):  # noqa: ANN001, ANN201
        return False

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
