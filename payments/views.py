"""Pages for payments: send (form -> review -> create), a live payment status page (with "Cancel" while it
awaits approval), activity, the user's own spending limits."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

import segno
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from numpay.core.errors import ApplicationError, NotFoundError
from numpay.core.money import format_amount, format_money, parse_amount
from numpay.core.solana import get_chain_client
from wallets.models import Wallet
from wallets.selectors import tokens_active
from wallets.services import token_get, wallet_for_user

from .app_settings import explorer_transaction_url
from .approvals import approval_progress
from .authorization import available_balance
from .models import Payment
from .policy_services import OWN_FIELDS, limits_overview, own_limits_parse, own_limits_set
from .requests import PaymentRequest, parse_recipient, validate_memo
from .selectors import (
    ACTIVITY_DIRECTIONS,
    payment_get_visible,
    payment_status_label,
    person_label,
    recent_recipients,
    wallet_activity_page,
)
from .services import payment_cancel, payment_create, payment_plan

#: where an error without a field of its own is shown on the send form
FORM_ERROR = "form"


def _form_request(request: HttpRequest) -> PaymentRequest:
    return PaymentRequest(to=request.POST.get("to", "").strip(), token=request.POST.get("token", "USDC"),
                          amount=request.POST.get("amount", "").strip(), memo=request.POST.get("memo", "").strip())


def _field_errors(pay_request: PaymentRequest) -> dict[str, dict[str, str]]:
    """Every field's form error at once (recipient form, token, amount, memo), before anything is looked up.

    :returns: ``{field: {"code", "message"}}``; empty when every field is well-formed.
    """
    errors: dict[str, dict[str, str]] = {}

    def check(field: str, func: object) -> object:
        try:
            return func()  # type: ignore[operator]
        except ApplicationError as exc:
            errors[field] = {"code": exc.code, "message": exc.message}
            return None

    check("to", lambda: parse_recipient(pay_request.to))
    token = check("token", lambda: token_get(symbol=pay_request.token))
    if token is not None:
        check("amount", lambda: parse_amount(pay_request.amount, decimals=token.decimals))  # type: ignore[attr-defined]
    check("memo", lambda: validate_memo(pay_request.memo))
    return errors


def _spendable(wallet: Wallet) -> list[dict[str, object]]:
    """What can be sent now per token (available balance, :func:`payments.authorization.available_balance`);
    an empty list when the chain cannot be read (the form still works)."""
    client = get_chain_client()
    rows: list[dict[str, object]] = []
    try:
        for token in tokens_active():
            amount = available_balance(client=client, wallet=wallet, token=token)
            rows.append({"token": token.symbol, "plain": format_amount(amount, decimals=token.decimals),
                         "display": format_money(amount, decimals=token.decimals)})
    except ApplicationError:
        return []
    return rows


@login_required
@require_http_methods(["GET", "POST"])
def send(request: HttpRequest) -> HttpResponse:
    """Step 1 (form) and step 2 (review, "Network fee: sponsored"); the confirm button creates the payment.

    The form shows what can be sent now per token (with a "Max" button), recent recipients, and every field's
    error next to it at once. Each review carries a fresh Idempotency-Key, so a double-clicked confirm pays once.
    """
    wallet = wallet_for_user(user=request.user)
    errors: dict[str, dict[str, str]] = {}
    context: dict[str, object] = {"tokens": tokens_active(), "form": request.POST or {"token": "USDC"}}
    if request.method == "POST":
        pay_request = _form_request(request)
        step = request.POST.get("step", "review")
        errors = _field_errors(pay_request)
        if not errors:
            try:
                if step == "confirm":
                    payment, _ = payment_create(user=request.user, request=pay_request,
                                                idempotency_key=request.POST.get("idempotency_key"))
                    return redirect("payment-detail", payment_id=payment.pk)
                plan = payment_plan(user=request.user, request=pay_request)
                recipient_user = plan.recipient.wallet.user if plan.recipient.wallet is not None else None
                recipient_label = person_label(recipient_user) if recipient_user is not None else pay_request.to
                context.update({"plan": plan, "idempotency_key": uuid.uuid4(), "request_data": pay_request,
                                "recipient_label": recipient_label,
                                "recipient_email": getattr(recipient_user, "email", ""),
                                "recipient_initial": (recipient_label[:1] or "?").upper(),
                                "display_amount": format_money(plan.amount, decimals=plan.token.decimals)})
                return render(request, "payments/send_review.html", context)
            except ApplicationError as exc:
                field = exc.extra.get("field", "") if exc.extra else ""
                errors[field if field in ("to", "token", "amount", "memo") else FORM_ERROR] = {
                    "code": exc.code, "message": exc.message}
    context.update({"errors": errors, "spendable": _spendable(wallet),
                    "recent_recipients": recent_recipients(wallet=wallet)})
    return render(request, "payments/send.html", context)


@login_required
def payment_detail(request: HttpRequest, payment_id: str) -> HttpResponse:
    """A payment's page; the status card refreshes itself (htmx) until the payment is final."""
    try:
        payment = payment_get_visible(user=request.user, payment_id=payment_id)
    except NotFoundError as exc:
        raise Http404 from exc
    status_label, tone = payment_status_label(payment)
    is_sender = payment.sender_id == request.user.pk
    recipient_user = payment.recipient_wallet.user if payment.recipient_wallet_id else None
    context = {"payment": payment, "ui_amount": format_amount(payment.amount, decimals=payment.token.decimals),
               "display_amount": format_money(payment.amount, decimals=payment.token.decimals),
               "ui_network_fee": format_amount(payment.network_fee, decimals=payment.token.decimals),
               "is_sender": is_sender, "status_label": status_label, "tone": tone,
               "counterparty": (person_label(recipient_user) if recipient_user is not None
                                else payment.recipient_input) if is_sender else person_label(payment.sender),
               "explorer_url": explorer_transaction_url(payment.signature)}
    if is_sender:
        decision = payment.policy_decision or {}
        context.update({"approvals_required": decision.get("approvals_required", 0),
                        "policy_checks": [_check_label(check, payment) for check in decision.get("checks", [])]})
        if payment.status == Payment.Status.AWAITING_APPROVAL:
            context.update(_approval_context(request, payment))
    if request.htmx and request.GET.get("part") == "approval":
        # the live "n of 2 approvals" part; once the payment stops waiting, the whole page is reloaded
        response = render(request, "payments/_approval_progress.html", context)
        if not is_sender or payment.status != Payment.Status.AWAITING_APPROVAL:
            response["HX-Refresh"] = "true"
        return response
    template = "payments/_payment_status.html" if request.htmx else "payments/payment_detail.html"
    return render(request, template, context)


def _approval_context(request: HttpRequest, payment: Payment) -> dict[str, object]:
    """What the page of a payment awaiting passkey approval shows: the progress ("1 of 2 approvals"), and
    for a second device the payment page's address as a link and a QR code (the other device signs in with
    the same account and approves with its own passkey)."""
    progress = approval_progress(payment)
    page_url = request.build_absolute_uri(reverse("payment-detail", args=[payment.pk]))
    return {"approvals": progress, "approval_page_url": page_url,
            "approval_qr": segno.make(page_url, error="m").svg_data_uri(scale=4, border=2)
            if progress.required > 1 else ""}


@login_required
def activity(request: HttpRequest) -> HttpResponse:
    """The wallet's activity (payments both ways and incoming transfers) in chain order, filtered by token and
    direction, cursor-paginated; as a page or (htmx) the list alone."""
    wallet = wallet_for_user(user=request.user)
    token = request.GET.get("token", "").strip()
    direction = request.GET.get("direction", "").strip()
    cursor = request.GET.get("cursor", "").strip()
    try:
        limit = max(1, min(int(request.GET.get("limit", "25")), 100))
    except ValueError:
        limit = 25
    symbols = [t.symbol for t in tokens_active()]
    error = ""
    if token not in ("", *symbols) or direction not in ("", *ACTIVITY_DIRECTIONS):
        token, direction, error = "", "", "Filter by a token symbol and a direction: sent or received."
    try:
        page = wallet_activity_page(wallet=wallet, limit=limit, token=token, direction=direction, cursor=cursor)
    except ApplicationError as exc:
        error, cursor = exc.message, ""
        page = wallet_activity_page(wallet=wallet, limit=limit, token=token, direction=direction)
    filters = {"token": token, "direction": direction}
    base = {k: v for k, v in filters.items() if v}
    context = {"activity": page.items, "next_cursor": page.next_cursor, "cursor": cursor, "filters": filters,
               "tokens": tokens_active(), "error": error, "first_query": urlencode(base),
               "next_query": urlencode({**base, "cursor": page.next_cursor})}
    template = "payments/_activity.html" if request.htmx else "payments/activity.html"
    return render(request, template, context)


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
