from __future__ import annotations

from django.urls import path

from .views import ActivityView, PaymentDetailView, PaymentListCreateView

urlpatterns = [
    path("activity", ActivityView.as_view(), name="api-activity"),
    path("payments", PaymentListCreateView.as_view(), name="api-payments"),
    path("payments/<str:payment_id>", PaymentDetailView.as_view(), name="api-payment"),
]
