from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("accounts/methods/", views.sign_in_methods_page, name="sign_in_methods"),
    path("accounts/methods/phone/remove/", views.phone_remove, name="phone_remove"),
    path("accounts/methods/passkeys/add/", views.passkey_add_page, name="passkey_add"),
    path("accounts/methods/passkeys/<int:pk>/rename/", views.passkey_rename, name="passkey_rename"),
    path("accounts/methods/passkeys/<int:pk>/remove/", views.passkey_remove, name="passkey_remove"),
    path("accounts/sms/delivery/", views.sms_delivery, name="sms_delivery"),
    path("dev/outbox/", views.dev_outbox, name="dev_outbox"),
]
