"""``manage.py localnet_bootstrap [--wait]``: fund the fee payer, create test USDC, register tokens."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from numpay.core.solana import get_chain_client
from wallets.faucet import localnet_bootstrap, wait_for_chain


class Command(BaseCommand):
    help = "Prepare the localnet chain for Numpay (idempotent)."

    def add_arguments(self, parser):  # noqa: ANN001
        parser.add_argument("--wait", action="store_true", help="wait up to 60 s for the RPC endpoint")

    def handle(self, *args, **options):  # noqa: ANN002, ANN003
        if settings.SOLANA_CLUSTER != "localnet":
            raise CommandError("localnet_bootstrap only runs against SOLANA_CLUSTER=localnet")
        client = get_chain_client()
        if options["wait"]:
            wait_for_chain(client)
        result = localnet_bootstrap(client=client)
        self.stdout.write(self.style.SUCCESS(
            f"localnet ready: fee payer {result.fee_payer}, faucet {result.faucet}, USDC mint {result.usdc_mint}"))
