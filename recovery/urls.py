from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("recovery/", views.overview, name="recovery"),
    path("recovery/guardians/", views.overview, name="recovery_guardians"),
    path("recovery/guardians/<uuid:guardian_id>/cancel-change/", views.guardian_change_cancel,
         name="recovery_guardian_change_cancel"),
    path("recovery/start/", views.start, name="recovery_start"),
    path("recovery/verify/", views.verify, name="recovery_verify"),
    path("recovery/status/", views.status, name="recovery_status"),
    path("recovery/invitations/<str:token>/", views.invitation, name="recovery_invitation"),
    path("recovery/approve/<uuid:request_id>/", views.approve, name="recovery_approve"),
    path("recovery/approve/<uuid:request_id>/withdraw/", views.withdraw, name="recovery_withdraw"),
    path("recovery/requests/<uuid:request_id>/cancel/", views.cancel_own, name="recovery_cancel_own"),
    path("recovery/cancel/<str:link>/", views.cancel, name="recovery_cancel"),
]
