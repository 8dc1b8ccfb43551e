from __future__ import annotations

from django.conf import settings
from django.db import models


class BaselineRow(models.Model):
    """One row per baseline request: the cheapest authenticated write the API can do."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"baseline row {self.pk}"
