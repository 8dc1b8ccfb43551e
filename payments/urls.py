from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("wallet/send/", views.send, name="send"),
    path("wallet/activity/", views.activity, name="activity"),
    path("wallet/payments/<str:payment_id>/", views.payment_detail, name="payment-detail"),
    path("wallet/payments/<str:payment_id>/cancel/", views.payment_cancel_page, name="payment-cancel"),
    path("wallet/limits/", views.limits, name="limits"),
]
