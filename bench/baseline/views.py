"""``POST /bench/baseline``: the product's DRF stack (same authentication classes, permission, throttles,
exception handler, JSON renderer) around one INSERT, and nothing else."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .models import BaselineRow


class BaselineView(APIView):
    """Insert one row for the authenticated user and answer 201 with its id."""

    def post(self, request: Request) -> Response:
        row = BaselineRow.objects.create(user=request.user)
        return Response({"id": row.pk}, status=201)
