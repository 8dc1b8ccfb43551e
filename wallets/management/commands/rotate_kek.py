"""``manage.py rotate_kek``: re-wrap every wallet data key under ``NUMPAY_KEK_CURRENT_ID``.

Procedure: add the new key to ``NUMPAY_KEKS`` (keep the old one), set ``NUMPAY_KEK_CURRENT_ID`` to it,
restart, run this command (safe to interrupt and re-run), then remove the old key.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from wallets.services import kek_rotate


class Command(BaseCommand):
    help = "Re-wrap every wallet data key under the current key-encryption key (resumable)."

    def add_arguments(self, parser):  # noqa: ANN001
        parser.add_argument("--batch-size", type=int, default=100)

    def handle(self, *args, **options):  # noqa: ANN002, ANN003
        count = kek_rotate(batch_size=options["batch_size"])
        self.stdout.write(self.style.SUCCESS(f"Re-wrapped {count} data key(s)."))
