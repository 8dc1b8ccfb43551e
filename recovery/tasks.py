"""Beat jobs of recovery (thin: they call services)."""

from __future__ import annotations

from celery import shared_task

from numpay.core.errors import ChainUnavailableError


@shared_task(name="recovery.tasks.recovery_sweep", autoretry_for=(ChainUnavailableError,), retry_backoff=2,
             retry_backoff_max=10, max_retries=2, soft_time_limit=50, time_limit=60, expires=30, ignore_result=True)
def recovery_sweep() -> dict[str, int]:
    """Beat job (every few seconds): guardian changes whose delay passed take effect, invitations and
    unapproved requests expire, changed guardian sets are written on-chain
    (:func:`recovery.services.guardian_sync_sweep`), and recoveries take their due on-chain steps
    (:func:`recovery.services.recovery_due_sweep`: start, execute when ``executes_at <= now``, cancel).
    Idempotent: every step re-reads under row locks.

    :returns: counts per step.
    """
    from .app_settings import app_settings
    from .services import (
        guardian_changes_apply,
        guardian_sync_sweep,
        invitations_expire,
        recovery_due_sweep,
        requests_expire,
    )

    return {"guardian_changes": guardian_changes_apply(), "invitations_expired": invitations_expire(),
            "requests_expired": requests_expire(), "guardian_syncs": guardian_sync_sweep(),
            "steps_begun": recovery_due_sweep(limit=app_settings.SWEEP_BATCH)}


@shared_task(name="recovery.tasks.recovery_email_deliver", bind=True, max_retries=None, acks_late=True,
             time_limit=60, soft_time_limit=45, ignore_result=True)
def recovery_email_deliver(self, email_id: int) -> str:  # noqa: ANN001
    """Send one queued recovery email (:func:`recovery.services.common.recovery_email_deliver`). A transient
    failure retries with exponential backoff (``NUMPAY_RECOVERY_EMAIL_RETRY_BACKOFF_SECONDS``, doubled, at
    most 5 minutes) up to ``NUMPAY_RECOVERY_EMAIL_MAX_RETRIES`` times, then the email ends ``failed``; a
    terminal one ends it at once. Safe to run twice: a sent email is not sent again.

    :param email_id: :class:`recovery.models.RecoveryEmail` primary key (the only argument: no code or link
        travels through the broker).
    :returns: the email's status.
    """
    from .app_settings import app_settings
    from .services.common import EmailTransientError
    from .services.common import recovery_email_deliver as deliver

    retries = self.request.retries
    try:
        return deliver(email_id=email_id, is_last_attempt=retries >= app_settings.EMAIL_MAX_RETRIES)
    except EmailTransientError as exc:
        countdown = min(app_settings.EMAIL_RETRY_BACKOFF_SECONDS * 2**retries, 300.0)
        raise self.retry(countdown=countdown, exc=exc) from None
