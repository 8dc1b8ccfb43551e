"""REST API v1 for wallets: ``GET /api/v1/wallet``, ``POST /api/v1/faucet`` (localnet only)."""

from __future__ import annotations

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
from wallets.selectors import wallet_balances
from wallets.services import token_get, wallet_for_user
from wallets.throttling import FaucetRateThrottle


class BalanceSerializer(serializers.Serializer):
    token = serializers.CharField()
    mint = serializers.CharField(help_text="Mint address; empty for native SOL.")
    amount = serializers.CharField(help_text="Base units (lamports for SOL) as a decimal integer string.")
    decimals = serializers.IntegerField()
    ui_amount = serializers.CharField(help_text="amount / 10**decimals as a decimal string.")


class WalletView(APIView):
    """The signed-in user's wallet with chain balances."""

    class WalletOutputSerializer(serializers.Serializer):
        address = serializers.CharField()
        custody = serializers.CharField()
        balances = BalanceSerializer(many=True)

    @extend_schema(operation_id="wallet_retrieve", responses={
        200: WalletOutputSerializer, **problems("wallet_not_found", "chain_unavailable", "chain_request_failed")})
    def get(self, request: Request) -> Response:
        wallet = wallet_for_user(user=request.user)
        balances = [
            {"token": b.token, "mint": b.mint, "amount": str(b.amount), "decimals": b.decimals,
             "ui_amount": b.ui_amount}
            for b in wallet_balances(wallet=wallet)
        ]
        return Response(self.WalletOutputSerializer({"address": wallet.address, "custody": wallet.custody,
                                               "balances": balances}).data)


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
