from __future__ import annotations

from django.urls import path

from .views import FaucetView, WalletView

urlpatterns = [
    path("wallet", WalletView.as_view(), name="api-wallet"),
    path("faucet", FaucetView.as_view(), name="api-faucet"),
]
