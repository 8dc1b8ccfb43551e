"""URL map: pages, allauth (pages + headless API), REST API v1, OpenAPI, admin."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

admin.site.site_header = "Numpay operations"
admin.site.site_title = "Numpay admin"
admin.site.index_title = "Operations"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("accounts.urls")),
    path("accounts/", include("allauth.urls")),
    path("_allauth/", include("allauth.headless.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI from our static files (drf-spectacular-sidecar) with its init script served separately: the
    # Content-Security-Policy allows no inline or third-party scripts.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("wallets.api.urls")),
    path("api/v1/", include("payments.api.urls")),
    path("api/v1/", include("recovery.api.urls")),
    path("", include("wallets.urls")),
    path("", include("payments.urls")),
    path("", include("recovery.urls")),
]
