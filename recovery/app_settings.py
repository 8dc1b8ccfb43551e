"""Settings of guardian recovery (issue 10 item 6). Each is a Django setting or, when absent there, the
environment variable of the same name (:func:`numpay.core.app_settings.setting`); checked by
:mod:`recovery.checks`. Durations are seconds.
"""

from __future__ import annotations

from numpay.core.app_settings import setting


class RecoverySettings:
    """Typed, live view of the ``NUMPAY_RECOVERY_*`` and ``NUMPAY_GUARDIAN_*`` settings."""

    @property
    def MIN_TIMELOCK_SECONDS(self) -> int:  # noqa: N802
        """Shortest timelock an operator or owner may set (default 24 h; seconds in development)."""
        return setting("NUMPAY_RECOVERY_MIN_TIMELOCK_SECONDS", 86_400, cast=int)

    @property
    def MAX_TIMELOCK_SECONDS(self) -> int:  # noqa: N802
        """Longest timelock (default 7 days)."""
        return setting("NUMPAY_RECOVERY_MAX_TIMELOCK_SECONDS", 604_800, cast=int)

    @property
    def DEFAULT_TIMELOCK_SECONDS(self) -> int:  # noqa: N802
        """A wallet's timelock until its owner changes it (default 48 h, as Argent), clamped to the range."""
        value = setting("NUMPAY_RECOVERY_DEFAULT_TIMELOCK_SECONDS", 172_800, cast=int)
        return min(max(value, self.MIN_TIMELOCK_SECONDS), self.MAX_TIMELOCK_SECONDS)

    @property
    def GUARDIAN_CHANGE_DELAY_SECONDS(self) -> int:  # noqa: N802
        """How long adding or removing a guardian waits before it takes effect (default 36 h)."""
        return setting("NUMPAY_GUARDIAN_CHANGE_DELAY_SECONDS", 129_600, cast=int)

    @property
    def INVITATION_TTL_SECONDS(self) -> int:  # noqa: N802
        """How long a guardian invitation can be accepted (default 7 days)."""
        return setting("NUMPAY_GUARDIAN_INVITATION_TTL_SECONDS", 604_800, cast=int)

    @property
    def REQUEST_TTL_SECONDS(self) -> int:  # noqa: N802
        """How long a recovery request may wait for its guardians before it expires (default 7 days)."""
        return setting("NUMPAY_RECOVERY_REQUEST_TTL_SECONDS", 604_800, cast=int)

    @property
    def CODE_TTL_SECONDS(self) -> int:  # noqa: N802
        """How long the code proving the email or phone of a recovery is valid (default 15 minutes)."""
        return setting("NUMPAY_RECOVERY_CODE_TTL_SECONDS", 900, cast=int)

    @property
    def CODE_MAX_ATTEMPTS(self) -> int:  # noqa: N802
        """Wrong codes before a recovery request is refused for good (default 5)."""
        return setting("NUMPAY_RECOVERY_CODE_MAX_ATTEMPTS", 5, cast=int)

    @property
    def START_RATE(self) -> tuple[int, int]:  # noqa: N802
        """``(requests, seconds)``: how many recovery requests one account or one client address may start
        per window (default 3 per hour)."""
        text = setting("NUMPAY_RECOVERY_START_RATE", "3/3600")
        count, seconds = str(text).split("/")
        return int(count), int(seconds)

    @property
    def HOLD_PAYMENTS(self) -> bool:  # noqa: N802
        """Whether outgoing payments are held while a recovery's timelock runs (default on)."""
        return setting("NUMPAY_RECOVERY_HOLD_PAYMENTS", True, cast=bool)

    @property
    def SWEEP_BATCH(self) -> int:  # noqa: N802
        """How many due recoveries one sweep takes (default 20)."""
        return setting("NUMPAY_RECOVERY_SWEEP_BATCH", 20, cast=int)

    @property
    def EMAIL_MAX_RETRIES(self) -> int:  # noqa: N802
        """How many times a recovery email whose send failed for a transient reason (connection, timeout,
        SMTP 4xx) is retried before it ends ``failed`` (default 5)."""
        return setting("NUMPAY_RECOVERY_EMAIL_MAX_RETRIES", 5, cast=int)

    @property
    def EMAIL_RETRY_BACKOFF_SECONDS(self) -> float:  # noqa: N802
        """First retry delay of a recovery email in seconds, doubled at each retry (capped at 5 minutes)."""
        return setting("NUMPAY_RECOVERY_EMAIL_RETRY_BACKOFF_SECONDS", 5.0, cast=float)

    @property
    def KEEP_EMAIL_BODIES(self) -> bool:  # noqa: N802
        """Whether sent recovery emails keep their text (codes, cancel links) in their row: only when nothing
        leaves the machine (the development outbox, or Django's in-memory test backend)."""
        from django.conf import settings

        return settings.EMAIL_BACKEND in ("accounts.outbox.OutboxEmailBackend",
                                          "django.core.mail.backends.locmem.EmailBackend")


app_settings = RecoverySettings()
