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


def parse_python(source: str, filename: str = "<unknown>") -> Any:
    """``ast.parse(source)``, parsed again in a fresh thread if CPython raises its spurious
    ``SystemError: AST constructor recursion depth mismatch`` (seen once in a full CI run on CPython 3.11.7, never
    alone: a CPython bug in the AST constructor's recursion-depth bookkeeping, fixed in later releases; a fresh
    thread starts that bookkeeping clean). A real syntax error is raised as usual.
    """
    import ast
    import threading

    try:
        return ast.parse(source, filename=filename)
    except SystemError:
        result: dict[str, Any] = {}

        def parse() -> None:
            try:
                result["tree"] = ast.parse(source, filename=filename)
            except BaseException as error:  # handed back to the caller below
                result["error"] = error

        thread = threading.Thread(target=parse)
        thread.start()
        thread.join()
        if "error" in result:
            raise result["error"] from None
        return result["tree"]
