"""ROOT_URLCONF of the bench settings: the product's URL map plus ``/bench/baseline``."""

from __future__ import annotations

from django.urls import include, path

from numpay.urls import urlpatterns as product_urlpatterns

urlpatterns = [path("bench/", include("bench.baseline.urls")), *product_urlpatterns]
