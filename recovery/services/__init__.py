"""Recovery services: the only writers of :mod:`recovery.models` (one concern per module)."""

from __future__ import annotations

from .common import cancel_link, request_by_cancel_link
from .execution import RECOVERY_OUTBOXES, recovery_complete_locked, recovery_due_sweep, sessions_revoke
from .guardians import (
    guardian_change_cancel,
    guardian_changes_apply,
    guardian_invitation_accept,
    guardian_invite,
    guardian_remove,
    invitation_accept_options,
    invitation_by_token,
    invitations_expire,
    owner_change_options,
    recovery_settings_update,
    recovery_setup,
    settings_subject,
    threshold_of,
)
from .onchain_guardians import guardian_change_approve, guardian_change_options
from .owner import recovery_cancel, recovery_cancel_options, recovery_freeze, recovery_hold_check
from .requests import (
    guardian_of,
    guardian_request,
    live_approvals,
    recovery_approval_withdraw,
    recovery_approve,
    recovery_approve_options,
    recovery_chain_approve,
    recovery_code_verify,
    recovery_passkey_register,
    recovery_start,
    recovery_withdraw_options,
    request_by_token,
    requests_expire,
)
from .sync import GUARDIAN_SYNC_OUTBOX, guardian_sync_sweep

__all__ = [
    "GUARDIAN_SYNC_OUTBOX", "guardian_sync_sweep", "guardian_change_approve", "guardian_change_options",
    "RECOVERY_OUTBOXES", "cancel_link", "guardian_change_cancel", "guardian_changes_apply",
    "guardian_invitation_accept", "guardian_invite", "guardian_of", "guardian_remove", "guardian_request",
    "invitation_accept_options",
    "invitation_by_token", "invitations_expire", "live_approvals", "owner_change_options",
    "recovery_approval_withdraw", "recovery_approve", "recovery_cancel", "recovery_cancel_options",
    "recovery_withdraw_options", "recovery_approve_options", "recovery_chain_approve",
    "recovery_code_verify", "recovery_complete_locked", "recovery_due_sweep", "recovery_freeze",
    "recovery_hold_check", "recovery_passkey_register", "recovery_settings_update", "recovery_setup",
    "recovery_start", "request_by_cancel_link", "request_by_token", "requests_expire", "sessions_revoke",
    "settings_subject", "threshold_of",
]
