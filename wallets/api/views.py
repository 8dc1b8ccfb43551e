"""REST API v1 for wallets: ``GET /api/v1/wallet``, ``POST /api/v1/faucet`` (localnet only)."""

from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from numpay.core.api import problems
from numpay.core.errors import NotFoundError
from numpay.core.money import parse_amount
from wallets.faucet import faucet_fund
from wallets.selectors import WalletRules, wallet_balances, wallet_rules
from wallets.services import token_get, wallet_for_user
from wallets.throttling import FaucetRateThrottle


class BalanceSerializer(serializers.Serializer):
    token = serializers.CharField()
    mint = serializers.CharField(help_text="Mint address; empty for native SOL.")
    amount = serializers.CharField(help_text="Base units (lamports for SOL) as a decimal integer string.")
    decimals = serializers.IntegerField()
    ui_amount = serializers.CharField(help_text="amount / 10**decimals as a decimal string.")


class LimitRuleSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Token symbol (or the mint when Numpay does not list it).")
    mint = serializers.CharField(help_text="Mint address; empty for native SOL.")
    per_transaction = serializers.CharField(help_text="Most one payment may move, in token units (decimal string).")
    per_period = serializers.CharField(help_text="Most per period, in token units.")
    period_seconds = serializers.IntegerField()
    spent_this_period = serializers.CharField(help_text="Spent in the current period, in token units.")
    period_started_at = serializers.DateTimeField(allow_null=True)


class AuthorityRuleSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="The Ed25519 public key that signs for the wallet.")
    permissions = serializers.ListField(child=serializers.ChoiceField(
        choices=["spend", "manage", "guardian", "recovery_cancel"]))
    expires_at = serializers.DateTimeField(allow_null=True)
    is_custody_key = serializers.BooleanField(help_text="Numpay's custody key for this wallet.")
    limits = LimitRuleSerializer(many=True)


class WalletRulesSerializer(serializers.Serializer):
    program_id = serializers.CharField(help_text="The Numpay wallet program.")
    config_address = serializers.CharField(help_text="The wallet's config account.")
    is_created = serializers.BooleanField(help_text="Whether the config is on-chain (it is created with the first "
                                                    "payment; before that the rules shown are the ones it will get).")
    nonce = serializers.IntegerField()
    authorities = AuthorityRuleSerializer(many=True)


def _time(unix: int | None) -> datetime | None:
    return None if unix is None else datetime.fromtimestamp(unix, tz=UTC)


def wallet_rules_data(rules: WalletRules | None) -> dict[str, object] | None:
    """The API representation of a smart wallet's on-chain rules (token units as decimal strings)."""
    if rules is None:
        return None
    return {"program_id": rules.program_id, "config_address": rules.config_address, "is_created": rules.is_created,
            "nonce": rules.nonce, "authorities": [
                {"key": a.key, "permissions": list(a.permissions), "expires_at": _time(a.expires_at),
                 "is_custody_key": a.is_custody_key, "limits": [
                     {"token": limit.token, "mint": limit.mint, "per_transaction": limit.ui_per_transaction,
                      "per_period": limit.ui_per_period, "period_seconds": limit.period_seconds,
                      "spent_this_period": limit.ui_spent, "period_started_at": _time(limit.period_start)}
                     for limit in a.limits]}
                for a in rules.authorities]}


class WalletView(APIView):
    """The signed-in user's wallet with chain balances and, for a smart wallet, its on-chain rules."""

    class WalletOutputSerializer(serializers.Serializer):
        address = serializers.CharField(help_text="Where to pay this wallet: its vault (a PDA of the Numpay wallet "
                                                  "program) for a smart wallet.")
        kind = serializers.ChoiceField(choices=["smart", "keypair"])
        previous_address = serializers.CharField(allow_blank=True, help_text="The address before the upgrade to a "
                                                                             "smart wallet (empty if none).")
        custody = serializers.CharField()
        balances = BalanceSerializer(many=True)
        rules = WalletRulesSerializer(allow_null=True, help_text="The smart wallet's on-chain rules (null for a "
                                                                 "keypair wallet).")

    @extend_schema(operation_id="wallet_retrieve", responses={
        200: WalletOutputSerializer, **problems("wallet_not_found", "chain_unavailable", "chain_request_failed")})
    def get(self, request: Request) -> Response:
        wallet = wallet_for_user(user=request.user)
        balances = [
            {"token": b.token, "mint": b.mint, "amount": str(b.amount), "decimals": b.decimals,
             "ui_amount": b.ui_amount}
            for b in wallet_balances(wallet=wallet)
        ]
        return Response(self.WalletOutputSerializer({
            "address": wallet.address, "kind": wallet.kind, "previous_address": wallet.previous_address,
            "custody": wallet.custody, "balances": balances, "rules": wallet_rules_data(wallet_rules(wallet=wallet)),
        }).data)


class FaucetView(APIView):
    """Localnet only: mint test USDC (or airdrop SOL) to the signed-in user's wallet. 404 elsewhere."""

    throttle_classes = [FaucetRateThrottle]

    class FaucetInputSerializer(serializers.Serializer):
        token = serializers.CharField(max_length=16)
        amount = serializers.CharField(max_length=40, help_text="Decimal string in token units, e.g. \"100\".")

    class FaucetOutputSerializer(serializers.Serializer):
        token = serializers.CharField()
        amount = serializers.CharField(help_text="Base units.")
        signature = serializers.CharField()

    @extend_schema(operation_id="faucet_create", request=FaucetInputSerializer, responses={
        201: FaucetOutputSerializer,
        **problems("invalid_request", "unknown_token", "invalid_amount", "amount_not_positive", "too_many_decimals",
                   "amount_too_large", "faucet_limit_exceeded", "wallet_not_found", "not_found", "chain_unavailable",
                   "chain_request_failed", body=True)})
    def post(self, request: Request) -> Response:
        if settings.SOLANA_CLUSTER != "localnet":
            raise NotFoundError("not_found", "There is no faucet on this network.")
        data = self.FaucetInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token = token_get(symbol=data.validated_data["token"])
        amount = parse_amount(data.validated_data["amount"], decimals=token.decimals)
        wallet = wallet_for_user(user=request.user)
        signature = faucet_fund(wallet=wallet, token=token, amount=amount)
        return Response(self.FaucetOutputSerializer({"token": token.symbol, "amount": str(amount),
                                               "signature": signature}).data, status=201)
