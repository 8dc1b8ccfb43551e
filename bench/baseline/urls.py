from __future__ import annotations

from django.urls import path

from .views import BaselineView

urlpatterns = [path("baseline", BaselineView.as_view(), name="bench-baseline")]
