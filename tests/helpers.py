"""Small helpers shared by tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def wait_until(predicate: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until true or ``timeout`` seconds pass. :returns: the last value."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
