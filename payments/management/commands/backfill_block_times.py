"""``manage.py backfill_block_times [--batch 200] [--max-batches N]``: fill the block times of payments and
incoming transfers recorded without one, from the chain (``payments.block_times``).

Idempotent and resumable: interrupt it and run it again at any time; rows already filled, or whose slot the
node had no time for, are not asked again. The beat job ``payments.tasks.block_time_backfill`` does the same a
few batches a minute; this is for doing it all at once.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from numpay.core.errors import ChainRequestError, ChainUnavailableError
from payments.block_times import block_time_backfill_batch


class Command(BaseCommand):
    help = "Fill missing block times of payments and incoming transfers from the chain (idempotent, resumable)."

    def add_arguments(self, parser):  # noqa: ANN001
        parser.add_argument("--batch", type=int, default=200, help="rows per table per batch (default 200)")
        parser.add_argument("--max-batches", type=int, default=0, help="stop after this many batches (0 = all)")

    def handle(self, *args, **options):  # noqa: ANN002, ANN003
        if options["batch"] <= 0:
            raise CommandError("--batch must be positive")
        filled = unavailable = batches = 0
        while not options["max_batches"] or batches < options["max_batches"]:
            try:
                batch = block_time_backfill_batch(limit=options["batch"])
            except (ChainUnavailableError, ChainRequestError) as exc:
                raise CommandError(f"the chain did not answer ({exc}); run the command again to resume "
                                   f"({filled} filled so far)") from exc
            if batch.rows == 0:
                break
            batches += 1
            filled += batch.filled
            unavailable += batch.unavailable
            self.stdout.write(f"batch {batches}: {batch.filled} filled, {batch.unavailable} without a time on the "
                              f"node, {batch.slots} slot(s) asked")
        self.stdout.write(self.style.SUCCESS(f"{filled} block time(s) filled, {unavailable} row(s) whose slot the "
                                             f"node has no time for (not asked again)"))
