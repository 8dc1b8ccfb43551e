"""Fault injection for reliability tests: dropped and delayed transactions, HTTP 429 / 503.

All faults are off by default.  One seeded :class:`random.Random` decides every fault, so a run
with the same seed and the same request order injects the same faults.
"""

from __future__ import annotations

import os
import random
import threading
from dataclasses import dataclass, field
from typing import Any

#: Environment variables read by :meth:`Faults.from_env` (flags override them).
ENV_VARS = {
    "drop_rate": "LOCALNET_DROP_RATE",
    "delay_slots": "LOCALNET_DELAY_SLOTS",
    "http_429_rate": "LOCALNET_HTTP_429_RATE",
    "http_503_rate": "LOCALNET_HTTP_503_RATE",
    "seed": "LOCALNET_FAULT_SEED",
}

#: JSON names used by ``localnet_setFaults`` / ``localnet_getFaults``.
JSON_NAMES = {
    "dropRate": "drop_rate",
    "delaySlots": "delay_slots",
    "http429Rate": "http_429_rate",
    "http503Rate": "http_503_rate",
    "seed": "seed",
}


@dataclass
class Faults:
    """The injected faults of one localnet.

    :param drop_rate: fraction (0..1) of ``sendTransaction`` calls answered with a signature but
        never landed.
    :param delay_slots: transactions land this many slots after ``sendTransaction`` answers (still
        subject to their blockhash's validity at landing time).
    :param http_429_rate: fraction (0..1) of HTTP requests answered ``429 Too Many Requests``.
    :param http_503_rate: fraction (0..1) of HTTP requests answered ``503 Service Unavailable``.
    :param seed: seed of the random generator deciding the faults (``None``: unseeded).
    """

    drop_rate: float = 0.0
    delay_slots: int = 0
    http_429_rate: float = 0.0
    http_503_rate: float = 0.0
    seed: int | None = None
    _random: random.Random = field(default_factory=random.Random, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.validate()
        self._random.seed(self.seed)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Faults:
        """Build faults from ``LOCALNET_*`` environment variables, then ``overrides`` (not ``None``).

        :raises ValueError: on a rate outside 0..1, a negative delay or an unparsable value.
        """
        source = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, variable in ENV_VARS.items():
            text = source.get(variable)
            if text not in (None, ""):
                values[name] = _coerce(name, text)
        values.update({name: value for name, value in overrides.items() if value is not None})
        return cls(**values)

    def validate(self) -> None:
        """Check the ranges.

        :raises ValueError: on a rate outside 0..1 or a negative delay.
        """
        for name in ("drop_rate", "http_429_rate", "http_503_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.delay_slots < 0:
            raise ValueError(f"delay_slots must be >= 0, got {self.delay_slots}")

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a ``localnet_setFaults`` object (JSON names, see :data:`JSON_NAMES`).

        A new ``seed`` re-seeds the generator.

        :raises ValueError: on an unknown name or a value out of range (nothing is changed then).
        """
        values = self.to_json()
        for json_name, value in changes.items():
            if json_name not in JSON_NAMES:
                raise ValueError(f"unknown fault {json_name!r}")
            values[json_name] = value
        candidate = {JSON_NAMES[key]: value for key, value in values.items()}
        coerced = {name: (_coerce(name, value) if value is not None else None) for name, value in candidate.items()}
        checked = Faults(**coerced)
        with self._lock:
            self.drop_rate = checked.drop_rate
            self.delay_slots = checked.delay_slots
            self.http_429_rate = checked.http_429_rate
            self.http_503_rate = checked.http_503_rate
            if "seed" in changes:
                self.seed = checked.seed
                self._random.seed(self.seed)

    def to_json(self) -> dict[str, Any]:
        """The faults under their JSON names."""
        return {json_name: getattr(self, name) for json_name, name in JSON_NAMES.items()}

    @property
    def http_enabled(self) -> bool:
        """True when an HTTP fault may fire (keeps the hot path free of random draws)."""
        return self.http_429_rate > 0.0 or self.http_503_rate > 0.0

    def http_status(self) -> int | None:
        """Draw the HTTP fault for one request: ``429``, ``503`` or ``None``."""
        with self._lock:
            draw = self._random.random()
        if draw < self.http_429_rate:
            return 429
        if draw < self.http_429_rate + self.http_503_rate:
            return 503
        return None

    def should_drop(self) -> bool:
        """Draw whether one ``sendTransaction`` is dropped."""
        if self.drop_rate <= 0.0:
            return False
        with self._lock:
            return self._random.random() < self.drop_rate


def _coerce(name: str, value: Any) -> Any:
    if name in ("delay_slots", "seed"):
        if isinstance(value, bool):
            raise ValueError(f"{name} must be an integer")
        return int(value)
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number")
    return float(value)
