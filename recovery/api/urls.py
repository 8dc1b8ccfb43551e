from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("recovery", views.RecoveryOverviewView.as_view(), name="api-recovery"),
    path("recovery/owner-challenge", views.OwnerChallengeView.as_view(), name="api-recovery-owner-challenge"),
    path("recovery/settings", views.RecoverySettingsView.as_view(), name="api-recovery-settings"),
    path("recovery/guardians", views.GuardianInviteView.as_view(), name="api-recovery-guardian-invite"),
    path("recovery/guardians/<uuid:guardian_id>/remove", views.GuardianRemoveView.as_view(),
         name="api-recovery-guardian-remove"),
    path("recovery/guardians/<uuid:guardian_id>/cancel-change", views.GuardianChangeCancelView.as_view(),
         name="api-recovery-guardian-change-cancel"),
    path("recovery/guardians/<uuid:guardian_id>/change-options", views.GuardianChangeOptionsView.as_view(),
         name="api-recovery-guardian-change-options"),
    path("recovery/guardians/<uuid:guardian_id>/confirm", views.GuardianConfirmView.as_view(),
         name="api-recovery-guardian-confirm"),
    path("recovery/invitations/<str:token>", views.InvitationView.as_view(), name="api-recovery-invitation"),
    path("recovery/invitations/<str:token>/accept", views.InvitationAcceptView.as_view(),
         name="api-recovery-invitation-accept"),
    path("recovery/requests", views.RequestStartView.as_view(), name="api-recovery-request-start"),
    path("recovery/requests/verify", views.RequestVerifyView.as_view(), name="api-recovery-request-verify"),
    path("recovery/requests/passkey", views.RequestPasskeyView.as_view(), name="api-recovery-request-passkey"),
    path("recovery/requests/status", views.RequestStatusView.as_view(), name="api-recovery-request-status"),
    path("recovery/requests/<uuid:request_id>/approval", views.ApprovalView.as_view(), name="api-recovery-approval"),
    path("recovery/requests/<uuid:request_id>/approve", views.ApproveView.as_view(), name="api-recovery-approve"),
    path("recovery/requests/<uuid:request_id>/withdraw", views.WithdrawView.as_view(), name="api-recovery-withdraw"),
    path("recovery/requests/<uuid:request_id>/withdraw-options", views.WithdrawOptionsView.as_view(),
         name="api-recovery-withdraw-options"),
    path("recovery/requests/<uuid:request_id>/approve-options", views.ChainApproveOptionsView.as_view(),
         name="api-recovery-approve-options"),
    path("recovery/requests/<uuid:request_id>/chain-approve", views.ChainApproveView.as_view(),
         name="api-recovery-chain-approve"),
    path("recovery/requests/<uuid:request_id>/cancel-options", views.CancelOptionsView.as_view(),
         name="api-recovery-cancel-options"),
    path("recovery/requests/<uuid:request_id>/cancel", views.CancelView.as_view(), name="api-recovery-cancel"),
]
