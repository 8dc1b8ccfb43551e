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
