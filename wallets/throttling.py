"""The faucet's rate limit, one per user for the page and the API together, kept in the shared cache."""

from __future__ import annotations

from typing import Any

from rest_framework.throttling import UserRateThrottle

from numpay.core.errors import ApplicationError

from .app_settings import app_settings


class FaucetRateThrottle(UserRateThrottle):
    """``API_THROTTLE_FAUCET`` faucet requests per user (DRF rate syntax), counted in the default cache, so
    every web process and both the page (:func:`wallets.views.faucet`) and the API
    (:class:`wallets.api.views.FaucetView`) draw from the same allowance."""

    scope = "faucet"

    def get_rate(self) -> str:
        return app_settings.FAUCET_RATE


def faucet_throttle_check(request: Any) -> None:
    """For pages: count this faucet request against the user's allowance.

    :raises ApplicationError: ``rate_limited`` (429) when the allowance is used up (nothing is counted then).
    """
    throttle = FaucetRateThrottle()
    if not throttle.allow_request(request, None):
        wait = throttle.wait()
        seconds = int(wait) + 1 if wait is not None else 60
        raise ApplicationError("rate_limited", f"You have used the test faucet too often. Try again in {seconds} s.",
                               extra={"retry_after": seconds})
