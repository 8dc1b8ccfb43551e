from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from .models import OutboundMessage, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    """Users by email and/or phone; no username."""

    ordering = ("-date_joined",)
    list_display = ("email", "phone", "phone_verified", "is_active", "is_staff", "date_joined")
    search_fields = ("email", "phone")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name", "phone", "phone_verified")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


@admin.register(OutboundMessage)
class OutboundMessageAdmin(admin.ModelAdmin):
    """Emails and texts sent or tried: operators see failed sends and why. Never the text (it may hold a code)."""

    list_display = ("created_at", "channel", "recipient", "status", "attempts", "error")
    list_filter = ("status", "channel")
    search_fields = ("recipient",)
    fields = ("channel", "recipient", "subject", "status", "attempts", "error", "provider_message_id", "created_at",
              "sent_at")
    readonly_fields = fields

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False
