"""Pages for wallets: landing, dashboard, receive, the localnet faucet (htmx).

A GET never writes: a signed-in account without a wallet (an operator made with ``createsuperuser``) gets
the ``wallet_not_found`` page from :class:`numpay.core.middleware.ApplicationErrorMiddleware`.
"""

from __future__ import annotations

import segno
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from numpay.core.errors import ApplicationError
from numpay.core.money import parse_amount
from payments.selectors import wallet_activity

from .faucet import faucet_fund
from .selectors import tokens_active, wallet_balances, wallet_rules
from .services import token_get, wallet_for_user
from .throttling import faucet_throttle_check


def landing(request: HttpRequest) -> HttpResponse:
    """Public landing page; signed-in users go to their dashboard."""
    if request.user.is_authenticated:
        return redirect("dashboard")
    return render(request, "landing.html")


def _qr_svg(address: str) -> str:
    return segno.make(f"solana:{address}", error="m").svg_data_uri(scale=6, border=2)


def _balances_context(request: HttpRequest) -> dict[str, object]:
    wallet = wallet_for_user(user=request.user)
    context: dict[str, object] = {"wallet": wallet, "balances": [], "chain_error": ""}
    try:
        context["balances"] = wallet_balances(wallet=wallet)
    except ApplicationError as exc:
        context["chain_error"] = exc.message
    return context


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """Address with copy button and QR (and the previous address of an upgraded wallet), SOL and USDC
    balances, the smart wallet's on-chain rules, activity, faucet on localnet."""
    context = _balances_context(request)
    context["qr"] = _qr_svg(context["wallet"].address)  # type: ignore[attr-defined]
    context["tokens"] = [t for t in tokens_active() if not t.is_native]
    context["activity"] = wallet_activity(wallet=context["wallet"], limit=10)  # type: ignore[arg-type]
    try:
        context["rules"] = wallet_rules(wallet=context["wallet"])  # type: ignore[arg-type]
    except ApplicationError as exc:
        context["rules_error"] = exc.message
    return render(request, "wallets/dashboard.html", context)


@login_required
def balances_partial(request: HttpRequest) -> HttpResponse:
    """The balances card alone (htmx refresh)."""
    return render(request, "wallets/_balances.html", _balances_context(request))


@login_required
def receive(request: HttpRequest) -> HttpResponse:
    """The address as text and QR code (``solana:`` URI), with a copy button."""
    wallet = wallet_for_user(user=request.user)
    return render(request, "wallets/receive.html", {"wallet": wallet, "qr": _qr_svg(wallet.address)})


@login_required
@require_POST
def faucet(request: HttpRequest) -> HttpResponse:
    """Localnet only: fund the user with test tokens, then re-render the balances card.

    Rate-limited together with the API faucet (one allowance per user in the shared cache,
    :mod:`wallets.throttling`); past it nothing is minted. An htmx request shows any refusal inline in the
    card (htmx swaps only 2xx answers); a plain form post gets the error page with the registered status.
    """
    if settings.SOLANA_CLUSTER != "localnet":
        raise Http404
    message, is_error = "", False
    try:
        faucet_throttle_check(request)
        token = token_get(symbol=request.POST.get("token", "USDC"))
        amount = parse_amount(request.POST.get("amount", "100"), decimals=token.decimals)
        faucet_fund(wallet=wallet_for_user(user=request.user), token=token, amount=amount)
        message = f"Added {request.POST.get('amount', '100')} {token.symbol} from the test faucet."
    except ApplicationError as exc:
        if not request.htmx:
            raise
        message, is_error = exc.message, True
    if not request.htmx:
        return redirect("dashboard")
    context = _balances_context(request)
    context.update({"faucet_message": message, "faucet_error": is_error})
    return render(request, "wallets/_balances.html", context)
