"""The custom user and the outbox of messages Numpay sends (emails and SMS).

A user signs in with an email address, a phone number or a social account: each of ``email`` and ``phone``
may be empty (stored as NULL, so "no email" never collides with another "no email"), and each is unique
when set. ``phone`` is E.164 (``+15551234567``, parsed by :mod:`accounts.phones`); ``phone_verified``
says whether its owner proved it by an SMS code (allauth's phone verification).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower


class UserManager(BaseUserManager["User"]):
    """Creates users keyed by email (there is no username); phone-only users are made by allauth's adapter."""

    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra_fields: object) -> User:
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra_fields: object) -> User:
        """A regular user."""
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email: str, password: str | None = None, **extra_fields: object) -> User:
        """An operator with admin access."""
        extra_fields["is_staff"] = True
        extra_fields["is_superuser"] = True
        return self._create_user(email, password, **extra_fields)


class User(AbstractUser):
    """A Numpay user: an email address and/or a phone number (E.164), each unique when set."""

    username = None  # type: ignore[assignment]
    email = models.EmailField("email address", unique=True, blank=True, null=True)
    phone = models.CharField(max_length=20, blank=True, null=True, unique=True)
    phone_verified = models.BooleanField(default=False)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()  # type: ignore[misc]

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique")]

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Store an empty email or phone as NULL (allauth writes ``""`` for a field the user left empty)."""
        self.email = self.email or None
        self.phone = self.phone or None
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return self.email or self.phone or f"user {self.pk}"


class OutboundMessage(models.Model):
    """One email or SMS Numpay sent or tried to send: the delivery record and the development outbox.

    SMS are queued here and delivered by :func:`accounts.tasks.sms_deliver` (status ``queued`` ->
    ``sent`` | ``failed``); emails are recorded as sent by :class:`accounts.outbox.OutboxEmailBackend`.
    With a real SMS gateway the body (which may hold a sign-in code) is erased once delivered.
    """

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        SMS = "sms", "SMS"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    channel = models.CharField(max_length=8, choices=Channel.choices)
    recipient = models.CharField(max_length=320)
    subject = models.CharField(max_length=255, blank=True)
    body = models.TextField(blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=255, blank=True)
    provider_message_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=["channel", "status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.channel} to {self.recipient} ({self.status})"


class PasskeyState(models.Model):
    """What changes with each use of a passkey: its signature counter and backed-up flag.

    The passkey itself is allauth's ``mfa.Authenticator`` row (type ``webauthn``): the one credential store
    (:mod:`accounts.passkeys`). This row is written under a row lock at each verified assertion, apart
    from allauth's JSON ``data`` (which a rename rewrites whole), so a stale rename never lowers the counter.
    """

    authenticator = models.OneToOneField("mfa.Authenticator", on_delete=models.CASCADE, primary_key=True,
                                         related_name="passkey_state")
    #: ``authenticatorData.signCount`` of the last accepted ceremony (0 for authenticators that never count).
    sign_count = models.PositiveBigIntegerField(default=0)
    #: The BS flag of the last accepted ceremony: the passkey is synced (backed up) by its provider.
    backed_up = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"passkey {self.authenticator_id}: sign count {self.sign_count}"
