"""``manage.py upgrade_wallets [--wallet ID ...]``: turn keypair wallets into smart wallets owned by the
same custody key, and move their funds to the new address (``wallets.upgrade``).

Idempotent and resumable: interrupt it and run it again at any time; already-upgraded wallets only get
their previous address swept again (funds that arrived there since). A wallet with a payment in progress
is skipped and reported; run the command again later.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db.models import Q

from numpay.core.errors import ApplicationError
from wallets.models import Wallet
from wallets.upgrade import wallet_upgrade_sweep, wallet_upgrade_switch


class Command(BaseCommand):
    help = "Upgrade keypair wallets to smart wallets and move their funds (idempotent, resumable)."

    def add_arguments(self, parser):  # noqa: ANN001
        parser.add_argument("--wallet", action="append", default=[], help="only this wallet id (repeatable)")

    def handle(self, *args, **options):  # noqa: ANN002, ANN003
        wallets = Wallet.objects.filter(Q(kind=Wallet.Kind.KEYPAIR) | ~Q(previous_address="")).order_by("created_at")
        if options["wallet"]:
            wallets = wallets.filter(pk__in=options["wallet"])
        upgraded = blocked = 0
        for wallet in wallets.iterator():
            try:
                wallet = wallet_upgrade_switch(wallet=wallet)
            except ApplicationError as exc:
                blocked += 1
                self.stderr.write(f"{wallet.pk} {wallet.address}: skipped: {exc.message}")
                continue
            result = wallet_upgrade_sweep(wallet=wallet)
            upgraded += 1
            moved = ", ".join(f"{amount} {symbol}" for symbol, amount in result.moved.items()) or "nothing to move"
            left = "".join(f"; {symbol} left: {reason}" for symbol, reason in result.left.items())
            self.stdout.write(f"{wallet.pk} {wallet.previous_address} -> {wallet.address}: {moved}{left}")
        self.stdout.write(self.style.SUCCESS(f"{upgraded} wallet(s) upgraded or swept, {blocked} skipped"))
