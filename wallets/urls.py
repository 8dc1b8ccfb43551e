from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.landing, name="landing"),
    path("wallet/", views.dashboard, name="dashboard"),
    path("wallet/balances/", views.balances_partial, name="balances"),
    path("wallet/live/", views.live_state, name="wallet-live"),
    path("wallet/receive/", views.receive, name="receive"),
    path("wallet/faucet/", views.faucet, name="faucet"),
]
