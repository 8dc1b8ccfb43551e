"""Settings of sign-in by phone (SMS delivery), of passkeys (WebAuthn) and of the development outbox.

Each is a Django setting or, when absent there, the environment variable of the same name
(:func:`numpay.core.app_settings.setting`). Checked by :mod:`accounts.checks`; production refuses to start
when SMS sign-in is on without gateway credentials (``numpay/settings/production.py``).
"""

from __future__ import annotations

from numpay.core.app_settings import setting

#: SMS backends by name (``SMS_BACKEND``): the development outbox, or Twilio's REST API.
SMS_BACKENDS = {"outbox": "accounts.sms.OutboxSmsBackend", "twilio": "accounts.sms.TwilioSmsBackend"}


class AccountsSettings:
    """Typed, live view of the ``SMS_*``, ``TWILIO_*`` and ``DEV_OUTBOX_ENABLED`` settings."""

    @property
    def SMS_SIGNIN_ENABLED(self) -> bool:  # noqa: N802
        """Whether people can sign up and sign in with a phone number (codes by SMS)."""
        return setting("SMS_SIGNIN_ENABLED", True, cast=bool)

    @property
    def SMS_BACKEND(self) -> str:  # noqa: N802
        """``outbox`` (development: nothing leaves the machine; read codes at /dev/outbox/) or ``twilio``."""
        return setting("SMS_BACKEND", "outbox")

    @property
    def SMS_TIMEOUT_SECONDS(self) -> float:  # noqa: N802
        """Timeout of one HTTP request to the SMS gateway, in seconds."""
        return setting("SMS_TIMEOUT_SECONDS", 10.0, cast=float)

    @property
    def SMS_MAX_RETRIES(self) -> int:  # noqa: N802
        """How many times a send that failed for a transient reason (network, 429, 5xx) is retried."""
        return setting("SMS_MAX_RETRIES", 4, cast=int)

    @property
    def SMS_RETRY_BACKOFF_SECONDS(self) -> float:  # noqa: N802
        """First retry delay in seconds, doubled at each retry."""
        return setting("SMS_RETRY_BACKOFF_SECONDS", 2.0, cast=float)

    @property
    def TWILIO_ACCOUNT_SID(self) -> str:  # noqa: N802
        """Twilio account SID (``AC...``)."""
        return setting("TWILIO_ACCOUNT_SID", "")

    @property
    def TWILIO_AUTH_TOKEN(self) -> str:  # noqa: N802
        """Twilio auth token (or an API key secret with ``TWILIO_API_KEY_SID``)."""
        return setting("TWILIO_AUTH_TOKEN", "")

    @property
    def TWILIO_FROM_NUMBER(self) -> str:  # noqa: N802
        """The sender number (E.164); or leave empty and set ``TWILIO_MESSAGING_SERVICE_SID``."""
        return setting("TWILIO_FROM_NUMBER", "")

    @property
    def TWILIO_MESSAGING_SERVICE_SID(self) -> str:  # noqa: N802
        """A Twilio messaging service (``MG...``) to send from instead of one number."""
        return setting("TWILIO_MESSAGING_SERVICE_SID", "")

    @property
    def TWILIO_API_BASE_URL(self) -> str:  # noqa: N802
        """Twilio's REST API root (tests point it at a local stand-in)."""
        return setting("TWILIO_API_BASE_URL", "https://api.twilio.com")

    @property
    def DEV_OUTBOX_ENABLED(self) -> bool:  # noqa: N802
        """Whether /dev/outbox/ exists (staff, or requests from this machine); never in production."""
        from django.conf import settings

        return setting("DEV_OUTBOX_ENABLED", settings.SOLANA_CLUSTER == "localnet", cast=bool)

    @property
    def KEEP_SMS_BODIES(self) -> bool:  # noqa: N802
        """Whether delivered SMS keep their text (codes) in the outbox: only with the development outbox."""
        return self.SMS_BACKEND == "outbox"

    # --- passkeys (WebAuthn) ---

    @property
    def WEBAUTHN_RP_ID(self) -> str:  # noqa: N802
        """The WebAuthn relying party id: the registrable domain passkeys are bound to (``localhost`` in dev).

        Never derived from the request's Host header (WebAuthn Level 3, section 5.1.3 "RP ID")."""
        return setting("WEBAUTHN_RP_ID", "localhost")

    @property
    def WEBAUTHN_RP_NAME(self) -> str:  # noqa: N802
        """The name the browser shows in its passkey prompts."""
        return setting("WEBAUTHN_RP_NAME", "Numpay")

    @property
    def WEBAUTHN_ALLOWED_ORIGINS(self) -> list[str]:  # noqa: N802
        """Exact origins (``scheme://host[:port]``) a ceremony's ``clientDataJSON.origin`` may name."""
        value = setting("WEBAUTHN_ALLOWED_ORIGINS", "http://localhost:8000")
        return [origin.strip() for origin in value.split(",") if origin.strip()] if isinstance(value, str) \
            else list(value)

    @property
    def WEBAUTHN_CHALLENGE_TIMEOUT_SECONDS(self) -> int:  # noqa: N802
        """How long a registration or sign-in challenge stays usable, in seconds."""
        return setting("WEBAUTHN_CHALLENGE_TIMEOUT_SECONDS", 300, cast=int)

    def twilio_missing(self) -> list[str]:
        """Names of the Twilio settings that are still empty (``[]`` when Twilio can send)."""
        missing = [name for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN") if not getattr(self, name)]
        if not self.TWILIO_FROM_NUMBER and not self.TWILIO_MESSAGING_SERVICE_SID:
            missing.append("TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID")
        return missing


app_settings = AccountsSettings()
