from __future__ import annotations

from django.urls import path

from . import payment_views, views

urlpatterns = [
    path("", views.landing, name="landing"),
    path("wallet/", views.dashboard, name="dashboard"),
    path("wallet/balances/", views.balances_partial, name="balances"),
    path("wallet/receive/", views.receive, name="receive"),
    path("wallet/faucet/", views.faucet, name="faucet"),
    path("wallet/send/", payment_views.send, name="send"),
    path("wallet/activity/", payment_views.activity, name="activity"),
    path("wallet/payments/<str:payment_id>/", payment_views.payment_detail, name="payment-detail"),
]
