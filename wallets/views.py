"""Pages for wallets: landing, the home (balance first, Send / Receive, recent activity), its live state
(JSON polled by ``static/js/numpay.js``), receive, the localnet faucet (htmx).

A GET never writes: a signed-in account without a wallet (an operator made with ``createsuperuser``) gets
the ``wallet_not_found`` page from :class:`numpay.core.middleware.ApplicationErrorMiddleware`.
"""

from __future__ import annotations

import segno
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from numpay.core.errors import ApplicationError
from numpay.core.money import format_money, parse_amount
from payments.selectors import wallet_activity, wallet_activity_version

from .faucet import faucet_fund
from .prices import balance_values
from .selectors import wallet_balances, wallet_rules
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
    context["values"] = balance_values(context["balances"])  # type: ignore[arg-type]
    return context


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """The home: a large balance per token, Send and Receive, recent activity, the smart wallet's on-chain
    rules, the faucet on localnet.

    The page keeps itself current by polling :func:`live_state` (no reloads); the address and QR code (and the
    previous address of an upgraded wallet) are on Receive.
    """
    context = _balances_context(request)
    context["activity"] = wallet_activity(wallet=context["wallet"], limit=10)  # type: ignore[arg-type]
    try:
        context["rules"] = wallet_rules(wallet=context["wallet"])  # type: ignore[arg-type]
    except ApplicationError as exc:
        context["rules_error"] = exc.message
    return render(request, "wallets/dashboard.html", context)


@login_required
def live_state(request: HttpRequest) -> JsonResponse:
    """What the home needs to update itself, as JSON (``Cache-Control: no-store``).

    ``{"version": str, "balances": [{"token", "amount" (base units, string), "display"}], "received":
    [{"key", "text"}], "chain_error": str}``: ``version`` changes whenever a payment of the wallet (either way)
    or an incoming transfer is added or changes state; ``received`` lists the newest completed incoming items
    (for the toast and the browser notification). A GET never writes.
    """
    wallet = wallet_for_user(user=request.user)
    context = _balances_context(request)
    received = [
        {"key": f"{item.kind}:{item.item_id}",
         "text": f"You received {item.display_amount} {item.token}"
                 + (f" from {item.counterparty}" if item.counterparty else "")}
        for item in wallet_activity(wallet=wallet, limit=10) if item.direction == "received" and item.tone == "ok"
    ]
    response = JsonResponse({
        "version": wallet_activity_version(wallet=wallet),
        "balances": [{"token": b.token, "amount": str(b.amount), "display": b.display_amount,
                      "value": context["values"].get(b.token, "")}  # type: ignore[attr-defined]
                     for b in context["balances"]],  # type: ignore[attr-defined]
        "received": received,
        "chain_error": context["chain_error"],
    })
    response["Cache-Control"] = "no-store"
    return response


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
    :mod:`wallets.throttling`); past it nothing is minted. An htmx request gets the outcome as a message next
    to the button (htmx swaps only 2xx answers, so refusals answer 200 too) and, on success, an
    ``HX-Trigger: numpay:changed`` header; a plain form post gets the error page with the registered status.
    """
    if settings.SOLANA_CLUSTER != "localnet":
        raise Http404
    message, is_error = "", False
    try:
        faucet_throttle_check(request)
        token = token_get(symbol=request.POST.get("token", "USDC"))
        amount = parse_amount(request.POST.get("amount", "100"), decimals=token.decimals)
        faucet_fund(wallet=wallet_for_user(user=request.user), token=token, amount=amount)
        message = f"Added {format_money(amount, decimals=token.decimals)} {token.symbol} from the test faucet."
    except ApplicationError as exc:
        if not request.htmx:
            raise
        message, is_error = exc.message, True
    if not request.htmx:
        return redirect("dashboard")
    response = render(request, "wallets/_faucet_message.html", {"faucet_message": message, "faucet_error": is_error})
    if not is_error:
        response["HX-Trigger"] = "numpay:changed"  # numpay.js refreshes balances and activity at once
    return response
