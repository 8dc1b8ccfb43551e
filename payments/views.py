"""Pages for payments: send (form -> review -> create), a live payment status page (with "Cancel" while it
awaits approval), activity, the user's own spending limits."""

from __future__ import annotations

import uuid

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from numpay.core.errors import ApplicationError, NotFoundError
from numpay.core.money import format_amount
from wallets.selectors import tokens_active
from wallets.services import token_get, wallet_for_user

from .policy_services import OWN_FIELDS, limits_overview, own_limits_parse, own_limits_set
from .requests import PaymentRequest
from .selectors import payment_get_visible, wallet_activity
from .services import payment_cancel, payment_create, payment_plan


def _form_request(request: HttpRequest) -> PaymentRequest:
    return PaymentRequest(to=request.POST.get("to", "").strip(), token=request.POST.get("token", "USDC"),
                          amount=request.POST.get("amount", "").strip(), memo=request.POST.get("memo", "").strip())


@login_required
@require_http_methods(["GET", "POST"])
def send(request: HttpRequest) -> HttpResponse:
    """Step 1 (form) and step 2 (review, "Network fee: sponsored"); the confirm button creates the payment.

    Each review carries a fresh Idempotency-Key, so a double-clicked confirm pays once.
    """
    context: dict[str, object] = {"tokens": tokens_active(), "form": request.POST or {"token": "USDC"}}
    if request.method == "POST":
        pay_request = _form_request(request)
        step = request.POST.get("step", "review")
        try:
            if step == "confirm":
                payment, _ = payment_create(user=request.user, request=pay_request,
                                            idempotency_key=request.POST.get("idempotency_key"))
                return redirect("payment-detail", payment_id=payment.pk)
            plan = payment_plan(user=request.user, request=pay_request)
            context.update({"plan": plan, "idempotency_key": uuid.uuid4(), "request_data": pay_request,
                            "recipient_label": pay_request.to})
            return render(request, "wallets/send_review.html", context)
        except ApplicationError as exc:
            context.update({"error": exc.message, "error_code": exc.code, "error_field": exc.extra.get("field", "")})
    return render(request, "wallets/send.html", context)


@login_required
def payment_detail(request: HttpRequest, payment_id: str) -> HttpResponse:
    """A payment's page; the status card refreshes itself (htmx) until the payment is final."""
    try:
        payment = payment_get_visible(user=request.user, payment_id=payment_id)
    except NotFoundError as exc:
        raise Http404 from exc
    context = {"payment": payment, "ui_amount": format_amount(payment.amount, decimals=payment.token.decimals),
               "ui_network_fee": format_amount(payment.network_fee, decimals=payment.token.decimals),
               "is_sender": payment.sender_id == request.user.pk}
    if context["is_sender"]:
        decision = payment.policy_decision or {}
        context.update({"approvals_required": decision.get("approvals_required", 0),
                        "policy_checks": [_check_label(check, payment) for check in decision.get("checks", [])]})
    template = "wallets/_payment_status.html" if request.htmx else "payments/payment_detail.html"
    return render(request, template, context)


@login_required
def activity(request: HttpRequest) -> HttpResponse:
    """The wallet's activity (payments both ways and deposits), as a page or an htmx fragment."""
    items = wallet_activity(wallet=wallet_for_user(user=request.user), limit=50)
    template = "wallets/_activity.html" if request.htmx else "wallets/activity.html"
    return render(request, template, {"activity": items})


RULE_LABELS = {"per_transaction_cap": "Per payment", "daily_cap": "24 hours", "weekly_cap": "7 days",
               "monthly_cap": "30 days", "max_payments_per_hour": "Payments per hour", "allowlist": "Allowed recipients",
               "passkey_above": "Passkey above", "two_passkeys_above": "Two passkeys above"}
OUTCOME_LABELS = {"pass": "within the limit", "refused": "refused", "approval_required": "approval required"}
AMOUNT_RULES = {"per_transaction_cap", "daily_cap", "weekly_cap", "monthly_cap", "passkey_above", "two_passkeys_above"}


def _check_label(check: dict[str, str], payment: object) -> dict[str, str]:
    label = RULE_LABELS.get(check["rule"], check["rule"])
    if check["rule"] in AMOUNT_RULES:
        token = payment.token  # type: ignore[attr-defined]
        label = f"{label} {format_amount(int(check['limit']), decimals=token.decimals)} {token.symbol}"
    return {"label": label, "policy": check["policy"], "outcome_label": OUTCOME_LABELS.get(check["outcome"], "")}


@login_required
@require_http_methods(["POST"])
def payment_cancel_page(request: HttpRequest, payment_id: str) -> HttpResponse:
    """"Cancel payment" on a payment awaiting approval: it ends ``rejected``, the reservation is released."""
    try:
        payment_cancel(user=request.user, payment_id=payment_id)
    except NotFoundError as exc:
        raise Http404 from exc
    except ApplicationError:
        pass  # already approved: the page shows its real status
    return redirect("payment-detail", payment_id=payment_id)


FIELD_LABELS = {"per_transaction_cap": "Per payment", "daily_cap": "Per 24 hours", "weekly_cap": "Per 7 days",
                "monthly_cap": "Per 30 days", "passkey_above": "Ask for a passkey above",
                "max_payments_per_hour": "Payments per hour"}


@login_required
@require_http_methods(["GET", "POST"])
def limits(request: HttpRequest) -> HttpResponse:
    """The user's own spending limits per token, next to Numpay's; tighten only (``limit_not_tighter``)."""
    context: dict[str, object] = {}
    if request.method == "POST":
        symbol = request.POST.get("token", "")
        try:
            token = token_get(symbol=symbol)
            own_limits_set(user=request.user, token=token, limits=own_limits_parse(
                token=token, values={name: request.POST.get(name, "") for name in OWN_FIELDS}))
            context["message"] = f"Your {token.symbol} limits are saved."
        except ApplicationError as exc:
            context.update({"error": exc.message, "error_field": exc.extra.get("field", ""), "error_token": symbol})
    rows = []
    for row in limits_overview(user=request.user, tokens=list(tokens_active())):
        rows.append({"token": row["token"], "fields": [
            {"name": name, "label": FIELD_LABELS[name], "own": row["own"][name], "operator": row["operator"][name]}
            for name in OWN_FIELDS]})
    context["rows"] = rows
    return render(request, "payments/limits.html", context, status=400 if context.get("error") else 200)
