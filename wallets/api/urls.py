from __future__ import annotations

from django.urls import path

from .payments import PaymentDetailView, PaymentListCreateView
from .views import FaucetView, WalletView

urlpatterns = [
    path("wallet", WalletView.as_view(), name="api-wallet"),
    path("faucet", FaucetView.as_view(), name="api-faucet"),
    path("payments", PaymentListCreateView.as_view(), name="api-payments"),
    path("payments/<str:payment_id>", PaymentDetailView.as_view(), name="api-payment"),
]
