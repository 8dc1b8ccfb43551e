"""Admin of guardian recovery: requests with their approvals, attempts and timeline (read-only), guardians and
invitations (read-only). Operators may **freeze** a suspicious request (an audited action, through
:func:`recovery.services.recovery_freeze`); nothing here can approve a request or change its status
otherwise. No key material or secret is displayed (passkey assertions and tokens are not shown)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry

from numpay.core.errors import ApplicationError

from . import services
from .models import (
    Guardian,
    GuardianInvitation,
    RecoveryApproval,
    RecoveryAttempt,
    RecoveryEmail,
    RecoveryEvent,
    RecoveryRequest,
    RecoverySetup,
)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):  # noqa: ANN001, ANN201
        return False

    def has_change_permission(self, request, obj=None):  # noqa: ANN001, ANN201
        return False


class ApprovalInline(ReadOnlyInline):
    model = RecoveryApproval
    fields = ("guardian", "approved_at", "withdrawn_at", "withdrawn_reason")
    readonly_fields = fields


class AttemptInline(ReadOnlyInline):
    model = RecoveryAttempt
    fields = ("phase", "number", "signature", "status", "send_count", "last_sent_at", "error_detail", "created_at")
    readonly_fields = fields


class EventInline(ReadOnlyInline):
    model = RecoveryEvent
    fields = ("created_at", "actor", "actor_user", "kind", "guardian", "note")
    readonly_fields = fields


@admin.register(RecoveryRequest)
class RecoveryRequestAdmin(admin.ModelAdmin):
    """Requests: status, timelock, approvals, attempts and the timeline; the only action is freeze."""

    list_display = ("id", "user", "status", "chain_phase", "threshold", "executes_at", "expires_at", "created_at")
    list_filter = ("status", "chain_phase", "channel")
    search_fields = ("id", "user__email", "user__phone")
    fields = ("id", "user", "wallet", "status", "channel", "verified_at", "digest", "threshold", "timelock_seconds",
              "timelock_started_at", "executes_at", "expires_at", "chain_nonce", "chain_phase", "ended_at",
              "end_reason", "signature",
              "error_detail", "created_at", "updated_at")
    readonly_fields = fields
    inlines = [ApprovalInline, AttemptInline, EventInline]
    actions = ["freeze"]

    def has_add_permission(self, request):  # noqa: ANN001, ANN201
        return False

    def has_delete_permission(self, request, obj=None):  # noqa: ANN001, ANN201
        return False

    def has_change_permission(self, request, obj=None):  # noqa: ANN001, ANN201
        return False

    @admin.action(description="Freeze the selected requests (stop their clock for good)")
    def freeze(self, request, queryset):  # noqa: ANN001, ANN201
        frozen = []
        for recovery in queryset:
            try:
                services.recovery_freeze(request_id=recovery.pk, operator=request.user, reason="admin action")
            except ApplicationError as error:
                self.message_user(request, f"{recovery.pk}: {error.message}", level="warning")
                continue
            frozen.append(recovery.pk)
        if frozen:
            LogEntry.objects.log_actions(user_id=request.user.pk, queryset=RecoveryRequest.objects.filter(pk__in=frozen),
                                         action_flag=CHANGE, change_message="Froze the recovery request.")
        self.message_user(request, f"Froze {len(frozen)} request(s).")


@admin.register(RecoverySetup)
class RecoverySetupAdmin(admin.ModelAdmin):
    """Owners' recovery rules and whether their guardian set is written on-chain (read-only)."""

    list_display = ("user", "threshold", "timelock_seconds", "hold_payments", "chain_sync", "chain_synced_version",
                    "chain_sync_version", "updated_at")
    list_filter = ("chain_sync",)
    search_fields = ("user__email",)
    fields = ("user", "threshold", "timelock_seconds", "hold_payments", "chain_sync", "chain_sync_version",
              "chain_synced_version", "chain_sync_error", "chain_change_step", "chain_change",
              "chain_change_effective_at", "updated_at")
    readonly_fields = fields

    def has_add_permission(self, request):  # noqa: ANN001, ANN201
        return False

    def has_delete_permission(self, request, obj=None):  # noqa: ANN001, ANN201
        return False


@admin.register(Guardian)
class GuardianAdmin(admin.ModelAdmin):
    list_display = ("owner", "guardian_user", "status", "change_effective_at", "removal_requested_at", "created_at")
    list_filter = ("status",)
    search_fields = ("owner__email", "guardian_user__email")
    fields = ("owner", "guardian_user", "status", "change_effective_at", "removal_requested_at", "change_on_chain",
              "owner_confirmed_at", "created_at",
              "activated_at", "removed_at")
    readonly_fields = fields

    def has_add_permission(self, request):  # noqa: ANN001, ANN201
        return False

    def has_delete_permission(self, request, obj=None):  # noqa: ANN001, ANN201
        return False


@admin.register(GuardianInvitation)
class GuardianInvitationAdmin(admin.ModelAdmin):
    list_display = ("owner", "email", "status", "expires_at", "created_at")
    list_filter = ("status",)
    search_fields = ("owner__email", "email")
    fields = ("owner", "email", "status", "expires_at", "accepted_by", "accepted_at", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request):  # noqa: ANN001, ANN201
        return False

    def has_delete_permission(self, request, obj=None):  # noqa: ANN001, ANN201
        return False


@admin.register(RecoveryEmail)
class RecoveryEmailAdmin(admin.ModelAdmin):
    """Delivery of recovery emails (queued, sent, failed with the reason); the text is not shown (codes, cancel
    links)."""

    list_display = ("recipient", "subject", "status", "attempts", "created_at", "sent_at")
    list_filter = ("status",)
    search_fields = ("recipient",)
    fields = ("recipient", "subject", "status", "attempts", "error", "created_at", "sent_at")
    readonly_fields = fields

    def has_add_permission(self, request):  # noqa: ANN001, ANN201
        return False

    def has_delete_permission(self, request, obj=None):  # noqa: ANN001, ANN201
        return False
