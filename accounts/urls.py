from __future__ import annotations

from django.urls import path

from . import passkey_signup_views, views

urlpatterns = [
    # sign up with a passkey (accounts.passkey_signup); the last step has allauth's name for it
    path("accounts/signup/passkey/", passkey_signup_views.passkey_signup_page, name="passkey_signup"),
    path("accounts/signup/passkey/code/", passkey_signup_views.passkey_signup_code_page, name="passkey_signup_code"),
    path("accounts/signup/passkey/create/", passkey_signup_views.passkey_signup_create_page,
         name="mfa_signup_webauthn"),
    *[path(f"_allauth/{client}/v1/auth/webauthn/signup{suffix}", view.as_api_view(client=client))
      for client in ("app", "browser")
      for suffix, view in (("", passkey_signup_views.PasskeySignupView),
                           ("/code", passkey_signup_views.PasskeySignupCodeView))],
    # removing a passkey, on allauth's paths and names (every removal is checked by accounts.services)
    path("accounts/2fa/webauthn/keys/<int:pk>/remove/", views.RemovePasskeyView.as_view(), name="mfa_remove_webauthn"),
    *[path(f"_allauth/{client}/v1/account/authenticators/webauthn",
           views.ManagePasskeysAPIView.as_api_view(client=client))
      for client in ("app", "browser")],
    path("accounts/methods/", views.sign_in_methods_page, name="sign_in_methods"),
    path("accounts/methods/phone/remove/", views.phone_remove, name="phone_remove"),
    path("accounts/methods/passkeys/add/", views.passkey_add_page, name="passkey_add"),
    path("accounts/methods/passkeys/<int:pk>/rename/", views.passkey_rename, name="passkey_rename"),
    path("accounts/methods/passkeys/<int:pk>/remove/", views.passkey_remove, name="passkey_remove"),
    path("accounts/sms/delivery/", views.sms_delivery, name="sms_delivery"),
    path("dev/outbox/", views.dev_outbox, name="dev_outbox"),
]
