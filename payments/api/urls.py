from __future__ import annotations

from django.urls import path

from .approvals import (
    PasskeyChangeStatusView,
    PasskeyLimitsOptionsView,
    PasskeyLimitsView,
    PasskeyOwnerAddView,
    PasskeyOwnerOptionsView,
    PasskeyRemovalOptionsView,
    PasskeyRemovalStatusView,
    PasskeyRemovalView,
    PaymentApprovalOptionsView,
    PaymentApproveView,
)
from .views import (
    ActivityView,
    OwnLimitsView,
    PaymentCancelView,
    PaymentDetailView,
    PaymentListCreateView,
    PaymentReclaimView,
)

urlpatterns = [
    path("activity", ActivityView.as_view(), name="api-activity"),
    path("payments", PaymentListCreateView.as_view(), name="api-payments"),
    path("payments/<str:payment_id>", PaymentDetailView.as_view(), name="api-payment"),
    path("payments/<str:payment_id>/reclaim", PaymentReclaimView.as_view(), name="api-payment-reclaim"),
    path("payments/<str:payment_id>/cancel", PaymentCancelView.as_view(), name="api-payment-cancel"),
    path("payments/<str:payment_id>/approval-options", PaymentApprovalOptionsView.as_view(),
         name="api-payment-approval-options"),
    path("payments/<str:payment_id>/approve", PaymentApproveView.as_view(), name="api-payment-approve"),
    path("wallet/passkeys/<int:authenticator_id>/owner-options", PasskeyOwnerOptionsView.as_view(),
         name="api-wallet-passkey-owner-options"),
    path("wallet/passkeys/<int:authenticator_id>/owner", PasskeyOwnerAddView.as_view(), name="api-wallet-passkey-owner"),
    path("wallet/passkeys/<int:authenticator_id>/limits-options", PasskeyLimitsOptionsView.as_view(),
         name="api-wallet-passkey-limits-options"),
    path("wallet/passkeys/<int:authenticator_id>/limits", PasskeyLimitsView.as_view(), name="api-wallet-passkey-limits"),
    path("wallet/passkey-changes/<uuid:change_id>", PasskeyChangeStatusView.as_view(),
         name="api-wallet-passkey-change-status"),
    path("wallet/passkeys/<int:authenticator_id>/removal-options", PasskeyRemovalOptionsView.as_view(),
         name="api-wallet-passkey-removal-options"),
    path("wallet/passkeys/<int:authenticator_id>/removal", PasskeyRemovalView.as_view(),
         name="api-wallet-passkey-removal"),
    path("wallet/passkey-removals/<uuid:removal_id>", PasskeyRemovalStatusView.as_view(),
         name="api-wallet-passkey-removal-status"),
    path("wallet/limits", OwnLimitsView.as_view(), name="api-wallet-limits"),
]
